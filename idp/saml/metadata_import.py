"""Reading a service provider's metadata for registration, defensively.

Metadata decides where assertions are sent (AssertionConsumerService) and which keys
are trusted, so it is parsed with defusedxml (no DTDs, no entity expansion) and checked
before anything is stored: one ``EntityDescriptor`` with one ``SPSSODescriptor``, at
least one HTTP-POST assertion consumer on https (or http on loopback), usable keys.

A signed document (or one that must be signed: ``--metadata-cert``) is verified with
xmlsec1 against the certificate the operator trusts, and XML signature wrapping is
refused: the signature must be a child of the root, its one reference must name the
root's ID, no ID may occur twice, and only the root is read afterwards. So the
element that was signed is the element that is used (the wrapping attacks move a
signed element aside and put an unsigned one where the reader looks).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from urllib.parse import urlsplit

from defusedxml import ElementTree as SafeET

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
MAX_BYTES = 512 * 1024


class MetadataError(ValueError):
    """The metadata cannot be registered; the message says why, in one line."""


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _check_url(url: str | None, what: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme == "https" and parts.netloc:
        return url
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return url
    raise MetadataError(f"{what} must be https (or http on loopback): {url!r}")


def parse(xml: bytes, *, trusted_cert_pem: str | None = None,
          xmlsec_binary: str = "xmlsec1") -> dict:
    """What registration stores about the SP (``protocol_meta``), or MetadataError."""
    if len(xml) > MAX_BYTES:
        raise MetadataError(f"metadata larger than {MAX_BYTES // 1024} KiB")
    try:
        root = SafeET.fromstring(xml)
    except SafeET.ParseError as exc:
        raise MetadataError(f"metadata is not well-formed XML: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - defusedxml's refusals (DTD, entities)
        raise MetadataError(f"metadata refused: {type(exc).__name__}") from None
    if root.tag != _q(MD, "EntityDescriptor"):
        raise MetadataError("metadata must have one md:EntityDescriptor as its root")
    signature = root.find(_q(DS, "Signature"))
    if trusted_cert_pem is not None or signature is not None:
        if trusted_cert_pem is None:
            raise MetadataError("the metadata is signed: give the signer's certificate "
                                "(--metadata-cert) so the signature can be checked")
        _check_signed_root(root, xml, trusted_cert_pem, xmlsec_binary)
    return _describe(root, xml)


def _check_signed_root(root, xml: bytes, cert_pem: str, xmlsec_binary: str) -> None:
    signatures = [el for el in root.iter(_q(DS, "Signature"))]
    direct = root.findall(_q(DS, "Signature"))
    if len(direct) != 1 or len(signatures) != 1:
        raise MetadataError("metadata must carry exactly one signature, on its root element")
    refs = direct[0].findall(f"{_q(DS, 'SignedInfo')}/{_q(DS, 'Reference')}")
    root_id = root.get("ID")
    if not root_id or len(refs) != 1 or refs[0].get("URI") != "#" + root_id:
        raise MetadataError("the metadata signature does not cover its root element "
                            "(signature wrapping refused)")
    ids = [el.get("ID") for el in root.iter() if el.get("ID") is not None]
    if len(ids) != len(set(ids)):
        raise MetadataError("metadata has duplicate ID attributes (signature wrapping refused)")
    with tempfile.TemporaryDirectory(prefix="idp-samlmd-") as tmp:
        doc, cert = os.path.join(tmp, "md.xml"), os.path.join(tmp, "signer.pem")
        with open(doc, "wb") as fh:
            fh.write(xml)
        with open(cert, "w") as fh:
            fh.write(cert_pem)
        try:
            run = subprocess.run(
                [xmlsec_binary, "--verify", "--enabled-reference-uris", "same-doc",
                 "--pubkey-cert-pem", cert, "--id-attr:ID", f"{MD}:EntityDescriptor", doc],
                capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MetadataError(f"cannot run {xmlsec_binary}: {type(exc).__name__}") from None
    if run.returncode != 0:
        raise MetadataError("the metadata signature is not valid for the given certificate")


def _certs(descriptor, use: str) -> list[str]:
    out = []
    for kd in descriptor.findall(_q(MD, "KeyDescriptor")):
        if kd.get("use") not in (None, use):
            continue
        for c in kd.iter(_q(DS, "X509Certificate")):
            text = "".join((c.text or "").split())
            if text:
                out.append(text)
    return out


def _endpoints(descriptor, tag: str) -> list[dict]:
    return [{"binding": el.get("Binding"), "location": el.get("Location"),
             "response_location": el.get("ResponseLocation"), "index": el.get("index"),
             "default": el.get("isDefault") == "true"}
            for el in descriptor.findall(_q(MD, tag))]


def _describe(root, xml: bytes) -> dict:
    entity_id = root.get("entityID") or ""
    if not entity_id or len(entity_id) > 1024:
        raise MetadataError("metadata has no usable entityID")
    sps = root.findall(_q(MD, "SPSSODescriptor"))
    if len(sps) != 1:
        raise MetadataError("metadata must describe exactly one SPSSODescriptor")
    sp = sps[0]
    if PROTOCOL not in (sp.get("protocolSupportEnumeration") or "").split():
        raise MetadataError("the SP does not list SAML 2.0 in protocolSupportEnumeration")
    acs = [e for e in _endpoints(sp, "AssertionConsumerService") if e["binding"] == POST]
    if not acs:
        raise MetadataError("the SP has no AssertionConsumerService with the HTTP-POST binding")
    for e in acs:
        _check_url(e["location"], "AssertionConsumerService Location")
    slo = _endpoints(sp, "SingleLogoutService")
    for e in slo:
        _check_url(e["location"], "SingleLogoutService Location")
        if e["response_location"]:
            _check_url(e["response_location"], "SingleLogoutService ResponseLocation")
    signing = _certs(sp, "signing")
    wants_signed = sp.get("AuthnRequestsSigned") == "true"
    if wants_signed and not signing:
        raise MetadataError("AuthnRequestsSigned is true but the SP publishes no signing key")
    formats = [(el.text or "").strip() for el in sp.findall(_q(MD, "NameIDFormat"))]
    return {"entity_id": entity_id, "saml_metadata": xml.decode("utf-8"),
            "saml_acs": acs, "saml_slo": slo, "saml_name_id_formats": [f for f in formats if f],
            "saml_signing_certs": signing, "saml_encryption_certs": _certs(sp, "encryption"),
            "saml_authn_requests_signed": wants_signed,
            "saml_wants_assertions_signed": sp.get("WantAssertionsSigned") == "true"}
