"""Checking a citizen's digital certificate as forwarded by the TLS terminator.

The terminator proved that the browser holds the certificate's private key (that is
what mutual TLS does); it may or may not have checked anything else (nginx's
``ssl_verify_client optional_no_ca`` checks nothing), so everything else is checked
here, with no Flask in sight:

1. the header parses as a certificate (URL-encoded PEM, as nginx's
   ``$ssl_client_escaped_cert``; plain or tab-folded PEM; bare base64 DER). Any further
   certificates in it are offered as untrusted intermediates, nothing more;
2. it is valid now, may be used for client authentication (extended key usage
   ``clientAuth``; key usage, when present, includes ``digitalSignature``) and is not a
   CA certificate;
3. it chains to the configured CA bundle (``cryptography.x509.verification``: signatures,
   validity of every certificate in the path, CA constraints). The bundle's self-signed
   certificates are the trust anchors and the others intermediates that may complete a
   path; a bundle without a self-signed certificate trusts all of its certificates;
4. with a CRL file configured, the leaf's issuer must have a current CRL in it signed by
   that issuer (no CRL, or a stale one, fails closed), and the leaf must not be on it.
   A CRL from a higher CA, when present, is applied to the intermediate it covers;
5. the subject names a valid person ID number (``id_field``).

Algorithms: a chain is verified with ``cryptography`` (RSA, ECDSA on the NIST curves,
Ed25519) unless a certificate on it is signed with SM2-with-SM3 (GM/T 0015, as Chinese
government CAs issue them): ``cryptography`` has no SM2, so such a chain goes to
OpenSSL's own verifier (:mod:`idp.crypto.x509_openssl`, steps 3 and 4 with the same
rules: purpose ``sslclient``, the leaf issuer's CRL required, higher CRLs applied when
present). Steps 1, 2 and 5 stay here for both: ``cryptography`` parses an SM2
certificate's subject, validity and extensions; only its key is beyond it. Without a
usable OpenSSL 3 an SM2 chain is refused as ``unsupported_algorithm``, never
half-checked.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from ..crypto import x509_openssl
from ..crypto.sm2 import SM2Error
from ..identity import InvalidIdNumber, parse_person_id

log = logging.getLogger(__name__)

# SM2 signature with SM3 (GB/T 35276 / GM/T 0006).
SM2_WITH_SM3 = ObjectIdentifier("1.2.156.10197.1.501")

# A header longer than this is not one certificate (plus a short chain) of a citizen.
MAX_HEADER = 24 * 1024
MAX_EXTRA_CERTS = 4

_ATTRIBUTES = {
    "serialnumber": NameOID.SERIAL_NUMBER,
    "cn": NameOID.COMMON_NAME,
    "commonname": NameOID.COMMON_NAME,
    "uid": NameOID.USER_ID,
    "userid": NameOID.USER_ID,
    "uniqueidentifier": NameOID.X500_UNIQUE_IDENTIFIER,
    "dnqualifier": NameOID.DN_QUALIFIER,
    "title": NameOID.TITLE,
}

# Separators certificate authorities put around the ID number inside a CN
# ("张三(110105…)", "张三@110105…"); only letters and the dots of transliterated
# names are kept when the rest of the CN is read as a name.
_NAME_DOTS = "·・.•‧"


class CertConfigError(RuntimeError):
    """The CA bundle, CRL file or ID field setting cannot be used."""


@dataclass
class CertCheck:
    """What a certificate check found. ``reason`` is None when it passed."""

    reason: str | None
    leaf: x509.Certificate | None = None
    chain: list[x509.Certificate] = field(default_factory=list)
    id_number: str | None = None
    names: list[str] = field(default_factory=list)  # names the subject states
    detail: str = ""  # for the operator's log; never shown, never audited

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def serial(self) -> str | None:
        """The serial as colon-separated hex (as ``openssl x509 -text`` prints it; the
        colons also keep log and audit masking from reading a run of digits as PII)."""
        if self.leaf is None:
            return None
        raw = format(self.leaf.serial_number, "x")
        raw = raw.zfill(len(raw) + len(raw) % 2).upper()
        return ":".join(raw[i:i + 2] for i in range(0, len(raw), 2))

    @property
    def issuer(self) -> str | None:
        return self.leaf.issuer.rfc4514_string() if self.leaf is not None else None

    @property
    def issuer_label(self) -> str:
        """The issuing CA as people know it (its CN, else its organisation)."""
        if self.leaf is None:
            return ""
        for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
            values = self.leaf.issuer.get_attributes_for_oid(oid)
            if values:
                return str(values[0].value)
        return self.issuer or ""

    @property
    def fingerprint(self) -> str:
        if self.leaf is None:
            return ""
        return self.leaf.fingerprint(hashes.SHA256()).hex()

    @property
    def not_after(self) -> dt.datetime | None:
        return self.leaf.not_valid_after_utc if self.leaf is not None else None


# -- parsing ----------------------------------------------------------------------------

_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def parse_header(value: str) -> list[x509.Certificate]:
    """The certificates in a forwarded header value, leaf first. Raises ValueError."""
    text = value.strip()
    if not text or len(text) > MAX_HEADER:
        raise ValueError("empty or oversized certificate header")
    if "," in text:
        # Neither PEM, base64 nor its URL escaping has a comma: this is two copies of
        # the header joined by the web server, i.e. the proxy appended its own to one
        # the client sent. Refuse rather than guess which one the proxy set.
        raise ValueError("several certificate headers")
    if "%" in text:
        # unquote, not unquote_plus: a "+" of the base64 alphabet may arrive unescaped.
        text = unquote(text, errors="strict")
    raw = text.encode("ascii", errors="strict")
    if b"-----BEGIN" in raw:
        # nginx's old $ssl_client_cert folds lines with a leading tab; PEM parsing in
        # cryptography ignores such white space inside the base64 body.
        blocks = _PEM_BLOCK.findall(raw)
        if not blocks:
            raise ValueError("no PEM certificate in the header")
        certs = [x509.load_pem_x509_certificate(b) for b in blocks[:1 + MAX_EXTRA_CERTS]]
    else:
        try:
            der = base64.b64decode(b"".join(raw.split()), validate=True)
        except binascii.Error:
            raise ValueError("neither PEM nor base64 DER") from None
        certs = [x509.load_der_x509_certificate(der)]
    return certs


# -- configuration files (cached on their modification time) -------------------------

_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()


def _cached(kind: str, path: str, load):
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CertConfigError(f"{kind} {path!r} cannot be read: {exc.strerror}") from None
    key = (kind, os.path.abspath(path), st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    try:
        with open(path, "rb") as fh:
            value = load(fh.read())
    except (OSError, ValueError) as exc:
        raise CertConfigError(f"{kind} {path!r} cannot be used: {exc}") from None
    with _cache_lock:
        for old in [k for k in _cache if k[:2] == key[:2]]:
            del _cache[old]
        _cache[key] = value
    return value


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    if cert.signature_algorithm_oid == SM2_WITH_SM3:
        try:
            return x509_openssl.self_signed(cert.public_bytes(serialization.Encoding.DER))
        except (ValueError, SM2Error):
            return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


@dataclass
class Bundle:
    anchors: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    store: Store


def _load_bundle(data: bytes) -> Bundle:
    certs = x509.load_pem_x509_certificates(data)
    anchors = [c for c in certs if _self_signed(c)]
    if anchors:
        intermediates = [c for c in certs if c not in anchors]
    else:
        anchors, intermediates = certs, []
    return Bundle(anchors, intermediates, Store(anchors))


def load_bundle(path: str) -> Bundle:
    return _cached("CA bundle", path, _load_bundle)


def _load_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    if b"-----BEGIN X509 CRL-----" in data:
        blocks = re.findall(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", data,
                            flags=re.S)
        return [x509.load_pem_x509_crl(b) for b in blocks]
    return [x509.load_der_x509_crl(data)]


def load_crls(path: str) -> list[x509.CertificateRevocationList]:
    return _cached("CRL file", path, _load_crls)


# -- the check --------------------------------------------------------------------------

def _usage_problem(leaf: x509.Certificate) -> str | None:
    try:
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            return "a CA certificate"
    except x509.ExtensionNotFound:
        pass
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "no extended key usage (clientAuth required)"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        return "extended key usage without clientAuth"
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not ku.digital_signature:
        return "key usage without digitalSignature"
    return None


def _verifier(bundle: Bundle, now: dt.datetime):
    # Citizens' certificates carry no subjectAltName (the CA/B web profile wants one for
    # a server); the CA/B checks are otherwise kept for both CA and leaf.
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    return (PolicyBuilder().store(bundle.store).time(now)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
            .build_client_verifier())


def _without_subject(message: str) -> str:
    # The verifier names the certificate it choked on, subject (name, ID number) and all.
    return re.sub(r"\s*\(encountered processing.*", "", message, flags=re.S)[:200]


def _revocation(chain: list[x509.Certificate], crls, now: dt.datetime) -> tuple[str, str] | None:
    """(reason, detail) if a certificate of the path is revoked or cannot be checked."""
    for depth, (cert, issuer) in enumerate(zip(chain, chain[1:], strict=False)):
        own = []
        for crl in crls:
            if crl.issuer != issuer.subject:
                continue
            try:
                if crl.is_signature_valid(issuer.public_key()):
                    own.append(crl)
            except (TypeError, ValueError, UnsupportedAlgorithm):
                continue
        if not own:
            if depth == 0:
                return "crl_unavailable", f"no CRL signed by {issuer.subject.rfc4514_string()}"
            continue
        crl = max(own, key=lambda c: c.last_update_utc)
        if crl.next_update_utc is not None and crl.next_update_utc < now:
            return "crl_unavailable", f"CRL of {issuer.subject.rfc4514_string()} is out of date"
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            return "revoked", f"revoked at depth {depth}"
    return None


def _sm2_on_path(leaf: x509.Certificate, pool: list[x509.Certificate]) -> bool:
    """Whether the leaf, or a certificate that may complete its path (followed by issuer
    name through ``pool``), is signed with SM2-with-SM3."""
    todo, seen = [leaf], set()
    while todo:
        cert = todo.pop()
        if cert in seen:
            continue
        seen.add(cert)
        if cert.signature_algorithm_oid == SM2_WITH_SM3:
            return True
        todo.extend(c for c in pool if c.subject == cert.issuer)
    return False


def _der(obj: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER)


def _openssl_path(leaf: x509.Certificate, extra: list[x509.Certificate], bundle: Bundle,
                  crls, now: dt.datetime) -> tuple[tuple[str, str] | None,
                                                   list[x509.Certificate]]:
    """Steps 3 and 4 by OpenSSL: (reason, detail) or None, and the verified path."""
    try:
        result = x509_openssl.verify(
            _der(leaf), roots=[_der(c) for c in bundle.anchors],
            untrusted=[_der(c) for c in (*bundle.intermediates, *extra)],
            crls=None if crls is None else [_der(c) for c in crls], at=now)
    except SM2Error as exc:
        return ("unsupported_algorithm", f"SM2 chain: {exc}"[:200]), []
    except ValueError as exc:
        return ("malformed", str(exc)[:200]), []
    if not result.ok:
        return (_openssl_reason(result),
                f"OpenSSL {result.error} at depth {result.depth}: {result.message}"), []
    return None, [x509.load_der_x509_certificate(der) for der in result.chain]


def _openssl_reason(result: x509_openssl.Result) -> str:
    error, at_leaf = result.error, result.depth == 0
    if error == x509_openssl.X509_V_ERR_CERT_REVOKED:
        return "revoked"
    if error in x509_openssl.CRL_ERRORS:
        return "crl_unavailable"
    if at_leaf and error == x509_openssl.X509_V_ERR_CERT_HAS_EXPIRED:
        return "expired"
    if at_leaf and error == x509_openssl.X509_V_ERR_CERT_NOT_YET_VALID:
        return "not_yet_valid"
    if at_leaf and error in (x509_openssl.X509_V_ERR_INVALID_PURPOSE,
                             x509_openssl.X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE):
        return "wrong_usage"
    if error == x509_openssl.X509_V_ERR_OUT_OF_MEM:
        return "unavailable"
    # Everything else (bad signature, unknown issuer, a CA's validity or constraints)
    # is a path that does not lead to a trusted CA.
    return "untrusted"


def _id_pattern(id_field: str) -> re.Pattern | None:
    if "(" not in id_field:
        return None
    try:
        return re.compile(id_field)
    except re.error as exc:
        raise CertConfigError(f"CERT_ID_FIELD is not a valid regular expression: {exc}") \
            from None


def _attribute_oid(id_field: str) -> ObjectIdentifier:
    key = id_field.strip()
    if re.fullmatch(r"\d+(\.\d+)+", key):
        return ObjectIdentifier(key)
    oid = _ATTRIBUTES.get(key.lower().replace("_", ""))
    if oid is None:
        raise CertConfigError(f"CERT_ID_FIELD {id_field!r}: expected a subject attribute "
                              "(serialNumber, CN, UID, a dotted OID) or a regular expression "
                              "with a group over the CN")
    return oid


def _first(name: x509.Name, oid: ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    value = values[0].value if values else ""
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _id_text(subject: x509.Name, id_field: str) -> tuple[str, tuple[int, int] | None]:
    """The ID number as the subject spells it, and where it sits in the CN (if there)."""
    pattern = _id_pattern(id_field)
    if pattern is not None:
        cn = _first(subject, NameOID.COMMON_NAME)
        match = pattern.search(cn)
        if match is None:
            return "", None
        group = "id" if "id" in pattern.groupindex else (1 if pattern.groups else 0)
        return match.group(group) or "", match.span()
    return _first(subject, _attribute_oid(id_field)), None


def comparable_name(text: str) -> str:
    """A name with only its letters and name dots (all read as "·"), for comparison."""
    out = []
    for ch in text:
        if ch in _NAME_DOTS:
            out.append("·")
        elif ch.isalpha():
            out.append(ch.casefold())
    return "".join(out).strip("·")


def _names(subject: x509.Name, id_text: str, span: tuple[int, int] | None) -> list[str]:
    names = []
    family = _first(subject, NameOID.SURNAME)
    given = _first(subject, NameOID.GIVEN_NAME)
    if family or given:
        names.append(family + given)
    cn = _first(subject, NameOID.COMMON_NAME)
    if span is not None:
        cn = cn[:span[0]] + cn[span[1]:]
    elif id_text:
        cn = cn.replace(id_text, "")
    if comparable_name(cn):
        names.append(cn.strip())
    return names


def check(header_value: str, *, ca_file: str, crl_file: str | None = None,
          id_field: str = "serialNumber", now: dt.datetime | None = None) -> CertCheck:
    """Check a forwarded certificate. Raises :class:`CertConfigError` when the settings
    cannot be used (an operator's problem, not the citizen's)."""
    now = now or dt.datetime.now(dt.UTC)
    bundle = load_bundle(ca_file)
    crls = load_crls(crl_file) if crl_file else None
    if _id_pattern(id_field) is None:
        _attribute_oid(id_field)  # a bad setting fails every time, not just on some certificates
    try:
        certs = parse_header(header_value)
    except (ValueError, UnicodeError) as exc:
        return CertCheck("malformed", detail=str(exc)[:200])
    leaf, extra = certs[0], certs[1:]
    if now < leaf.not_valid_before_utc:
        return CertCheck("not_yet_valid", leaf)
    if now > leaf.not_valid_after_utc:
        return CertCheck("expired", leaf)
    try:
        usage = _usage_problem(leaf)
    except ValueError as exc:  # an extension that does not parse
        return CertCheck("malformed", leaf, detail=str(exc)[:200])
    if usage:
        return CertCheck("wrong_usage", leaf, detail=usage)
    if _sm2_on_path(leaf, [*bundle.anchors, *bundle.intermediates, *extra]):
        problem, chain = _openssl_path(leaf, extra, bundle, crls, now)
        if problem:
            return CertCheck(problem[0], leaf, detail=problem[1])
    else:
        try:
            verified = _verifier(bundle, now).verify(leaf, bundle.intermediates + extra)
        except (VerificationError, UnsupportedAlgorithm, x509.UnsupportedGeneralNameType,
                ValueError) as exc:
            return CertCheck("untrusted", leaf, detail=_without_subject(str(exc)))
        chain = list(verified.chain)
        if crls is not None:
            problem = _revocation(chain, crls, now)
            if problem:
                return CertCheck(problem[0], leaf, chain, detail=problem[1])
    id_text, span = _id_text(leaf.subject, id_field)
    try:
        number = parse_person_id(id_text).number if id_text else None
    except InvalidIdNumber as exc:
        return CertCheck("no_id", leaf, chain, detail=f"ID field: {exc.code}")
    if number is None:
        return CertCheck("no_id", leaf, chain, detail="no ID number in the subject")
    return CertCheck(None, leaf, chain, id_number=number,
                     names=_names(leaf.subject, id_text, span))
