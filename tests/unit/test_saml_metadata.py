"""Registering a SAML SP from its metadata: what is refused, and XML signature wrapping
against a signed metadata document (the signed element must be the one that is read)."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from idp.saml.metadata_import import MetadataError, parse
from tests.saml.sp import make_keypair

XMLSEC = shutil.which("xmlsec1")
SIG_TEMPLATE = """<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
<ds:Reference URI="#{ref}"><ds:Transforms>
<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature>"""


SIGNED_ATTR = ' AuthnRequestsSigned="true"'


def _sp(entity="https://sp.example/saml", acs="https://sp.example/saml/acs", *, ident="md1",
        cert_b64="", signature="", extra="", signed_requests=False) -> str:
    keys = (f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/'
            f'xmldsig#"><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>'
            f'</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>') if cert_b64 else ""
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'ID="{ident}" entityID="{entity}">{signature}{extra}'
            f'<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"'
            f'{SIGNED_ATTR if signed_requests else ""}>{keys}'
            f'<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"'
            f' Location="{acs}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>')


@pytest.fixture
def signer(tmp_path):
    key_file, cert_file = make_keypair(str(tmp_path), "signer")
    with open(cert_file) as fh:
        pem = fh.read()
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return {"key": key_file, "cert": cert_file, "pem": pem,
            "b64": base64.b64encode(der).decode(), "dir": tmp_path}


def _sign(signer, xml: str) -> str:
    path = signer["dir"] / "tosign.xml"
    path.write_text(xml)
    out = subprocess.run([XMLSEC, "--sign", "--privkey-pem", f"{signer['key']},{signer['cert']}",
                          "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
                          str(path)], capture_output=True, check=True)
    return out.stdout.decode()


def test_plain_metadata_is_described():
    meta = parse(_sp().encode())
    assert meta["entity_id"] == "https://sp.example/saml"
    assert [e["location"] for e in meta["saml_acs"]] == ["https://sp.example/saml/acs"]
    assert meta["saml_authn_requests_signed"] is False


@pytest.mark.parametrize("xml, why", [
    (b"<not-xml", "well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "refused"),
    (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>', "root"),
    (_sp(acs="http://sp.example/acs").encode(), "https"),
    (_sp(acs="javascript:alert(1)").encode(), "https"),
    (_sp(signed_requests=True).encode(), "signing key"),
])
def test_bad_metadata_is_refused_with_a_reason(xml, why):
    with pytest.raises(MetadataError, match=why):
        parse(xml)


def test_signed_metadata_verifies_with_the_trusted_certificate(signer):
    signed = _sign(signer, _sp(signature=SIG_TEMPLATE.format(ref="md1")))
    meta = parse(signed.encode(), trusted_cert_pem=signer["pem"], xmlsec_binary=XMLSEC)
    assert meta["entity_id"] == "https://sp.example/saml"


def test_signed_metadata_needs_the_signers_certificate(signer):
    signed = _sign(signer, _sp(signature=SIG_TEMPLATE.format(ref="md1")))
    with pytest.raises(MetadataError, match="metadata-cert"):
        parse(signed.encode(), xmlsec_binary=XMLSEC)


def test_unsigned_metadata_refused_when_a_signer_is_required(signer):
    with pytest.raises(MetadataError, match="exactly one signature"):
        parse(_sp().encode(), trusted_cert_pem=signer["pem"], xmlsec_binary=XMLSEC)


def test_metadata_altered_after_signing_is_refused(signer):
    signed = _sign(signer, _sp(signature=SIG_TEMPLATE.format(ref="md1")))
    altered = signed.replace("https://sp.example/saml/acs", "https://evil.example/acs")
    with pytest.raises(MetadataError, match="not valid"):
        parse(altered.encode(), trusted_cert_pem=signer["pem"], xmlsec_binary=XMLSEC)


def test_metadata_signed_by_another_key_is_refused(signer, tmp_path):
    signed = _sign(signer, _sp(signature=SIG_TEMPLATE.format(ref="md1")))
    _k, other_cert = make_keypair(str(tmp_path), "other")
    with open(other_cert) as fh:
        with pytest.raises(MetadataError, match="not valid"):
            parse(signed.encode(), trusted_cert_pem=fh.read(), xmlsec_binary=XMLSEC)


def _inner(signed: str) -> str:
    return signed.split("?>", 1)[-1].strip()


def test_wrapping_signed_descriptor_inside_an_unsigned_root_is_refused(signer):
    """XSW: the genuine signed EntityDescriptor is hidden in an extension of an attacker's
    root that names the attacker's assertion consumer."""
    signed = _inner(_sign(signer, _sp(signature=SIG_TEMPLATE.format(ref="md1"))))
    wrapped = _sp(acs="https://evil.example/acs", ident="evil",
                  extra=f"<md:Extensions>{signed}</md:Extensions>")
    with pytest.raises(MetadataError, match="signature"):
        parse(wrapped.encode(), trusted_cert_pem=signer["pem"], xmlsec_binary=XMLSEC)


def test_signature_moved_to_root_but_referencing_the_hidden_original_is_refused(signer):
    signed = _inner(_sign(signer, _sp(signature=SIG_TEMPLATE.format(ref="md1"))))
    sig = signed[signed.index("<ds:Signature"):signed.index("</ds:Signature>") + 15]
    original = signed.replace(sig, "")
    wrapped = _sp(acs="https://evil.example/acs", ident="evil", signature=sig,
                  extra=f"<md:Extensions>{original}</md:Extensions>")
    with pytest.raises(MetadataError, match="does not cover its root"):
        parse(wrapped.encode(), trusted_cert_pem=signer["pem"], xmlsec_binary=XMLSEC)


def test_duplicate_ids_are_refused(signer):
    signed = _inner(_sign(signer, _sp(signature=SIG_TEMPLATE.format(ref="md1"))))
    sig = signed[signed.index("<ds:Signature"):signed.index("</ds:Signature>") + 15]
    original = signed.replace(sig, "")
    wrapped = _sp(acs="https://evil.example/acs", ident="md1", signature=sig,
                  extra=f"<md:Extensions>{original}</md:Extensions>")
    with pytest.raises(MetadataError, match="duplicate ID|signature"):
        parse(wrapped.encode(), trusted_cert_pem=signer["pem"], xmlsec_binary=XMLSEC)
