"""X.509 chain verification by OpenSSL's own ``X509_verify_cert``, for SM2 certificates.

Why this exists: ``cryptography`` has no SM2 (no curve 1.2.156.10197.1.301, no
SM2-with-SM3 signature 1.2.156.10197.1.501), so it cannot verify the certificates that
Chinese government CAs issue under GM/T 0015. OpenSSL 3 can, and it is already loaded
for :mod:`idp.crypto.sm2`; this module binds its X.509 verifier through ``cffi`` (ABI
mode, the same ``libcrypto`` that module opened and self-tested), so no certificate
is ever taken apart by hand-written ASN.1 here.

Interop: a chain is verified exactly as ::

    openssl verify -purpose sslclient -CAfile roots.pem -untrusted inter.pem \\
        [-partial_chain] [-crl_check_all -CRLfile crls.pem] -attime T leaf.pem

would verify it, with three differences, each needed by GM/T 0015 on OpenSSL 3.0:

1. every SM2-signed certificate gets the distinguishing ID ``1234567812345678``
   (``X509_set0_distinguishing_id``). OpenSSL 3.0 otherwise computes SM2's ``Z`` with
   an empty ID, and a certificate signed with the standard ID fails with "certificate
   signature failure" (tested). ``openssl verify -vfyopt distid:…`` sets it on the leaf
   only, so it cannot verify a chain with an SM2 intermediate (openssl/openssl#23471);
2. ``X509_CRL_verify`` passes no ID at all, so an SM2 CRL signed with the standard ID
   fails with ``X509_V_ERR_CRL_SIGNATURE_FAILURE``. The verify callback then checks
   that very CRL's signature against the issuer OpenSSL chose, with the standard ID
   (:mod:`idp.crypto.sm2`), and lets OpenSSL go on (dates, revocation) only if it holds;
3. with CRLs, every certificate of the path is checked against the CRLs given
   (``X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL``), but only the leaf's issuer
   *must* have one: a missing CRL further up (``UNABLE_TO_GET_CRL``,
   ``DIFFERENT_CRL_SCOPE``) is let through. A stale or badly signed CRL never is.

``PARTIAL_CHAIN`` is set only when some trusted certificate is not self-signed (an
operator who trusts an intermediate directly).

Everything OpenSSL allocates is freed before :func:`verify` returns (``ffi.gc`` for the
certificates and CRLs, ``try``/``finally`` for the store, stack and context).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from . import sm2

log = logging.getLogger(__name__)

__all__ = ["DISTINGUISHING_ID", "Result", "self_signed", "verify"]

#: GM/T 0009 / GM/T 0015 default signer ID, used for every SM2 certificate and CRL.
DISTINGUISHING_ID = sm2.DEFAULT_UID
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"

# x509_vfy.h / x509v3.h (stable ABI values).
X509_V_OK = 0
X509_V_ERR_UNSPECIFIED = 1
X509_V_ERR_UNABLE_TO_GET_CRL = 3
X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE = 5
X509_V_ERR_CERT_SIGNATURE_FAILURE = 7
X509_V_ERR_CRL_SIGNATURE_FAILURE = 8
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_CRL_NOT_YET_VALID = 11
X509_V_ERR_CRL_HAS_EXPIRED = 12
X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD = 15
X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD = 16
X509_V_ERR_OUT_OF_MEM = 17
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
X509_V_ERR_CERT_REVOKED = 23
X509_V_ERR_INVALID_PURPOSE = 26
X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER = 33
X509_V_ERR_KEYUSAGE_NO_CRL_SIGN = 35
X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION = 36
X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE = 39
X509_V_ERR_DIFFERENT_CRL_SCOPE = 44
X509_V_ERR_CRL_PATH_VALIDATION_ERROR = 54

#: Errors that mean a certificate's revocation status could not be established.
CRL_ERRORS = frozenset({
    X509_V_ERR_UNABLE_TO_GET_CRL, X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE,
    X509_V_ERR_CRL_SIGNATURE_FAILURE, X509_V_ERR_CRL_NOT_YET_VALID, X509_V_ERR_CRL_HAS_EXPIRED,
    X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD, X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD,
    X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER, X509_V_ERR_KEYUSAGE_NO_CRL_SIGN,
    X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION, X509_V_ERR_DIFFERENT_CRL_SCOPE,
    X509_V_ERR_CRL_PATH_VALIDATION_ERROR,
})
_FLAG_CRL_CHECK = 0x4
_FLAG_CRL_CHECK_ALL = 0x8
_FLAG_PARTIAL_CHAIN = 0x80000
_PURPOSE_SSL_CLIENT = 1  # X509_PURPOSE_SSL_CLIENT, "sslclient"

_CDEF = """
typedef struct x509_st X509;
typedef struct X509_crl_st X509_CRL;
typedef struct X509_pubkey_st X509_PUBKEY;
typedef struct x509_store_st X509_STORE;
typedef struct x509_store_ctx_st X509_STORE_CTX;
typedef struct X509_VERIFY_PARAM_st X509_VERIFY_PARAM;
typedef struct stack_st OPENSSL_STACK;
typedef struct asn1_string_st ASN1_OCTET_STRING;
/* 64-bit time_t: every platform with OpenSSL 3 that this service runs on */
typedef int64_t time_t;

void ERR_clear_error(void);
int OBJ_txt2nid(const char *s);

X509 *d2i_X509(X509 **a, const unsigned char **pp, long length);
int i2d_X509(X509 *a, unsigned char **pp);
void X509_free(X509 *a);
int X509_get_signature_nid(const X509 *x);
int X509_self_signed(X509 *cert, int verify_signature);
X509_PUBKEY *X509_get_X509_PUBKEY(const X509 *x);
int i2d_X509_PUBKEY(X509_PUBKEY *a, unsigned char **pp);
void X509_set0_distinguishing_id(X509 *x, ASN1_OCTET_STRING *d_id);
ASN1_OCTET_STRING *ASN1_OCTET_STRING_new(void);
int ASN1_OCTET_STRING_set(ASN1_OCTET_STRING *str, const unsigned char *data, int len);
void ASN1_OCTET_STRING_free(ASN1_OCTET_STRING *a);

X509_CRL *d2i_X509_CRL(X509_CRL **a, const unsigned char **pp, long length);
int i2d_X509_CRL(X509_CRL *a, unsigned char **pp);
void X509_CRL_free(X509_CRL *a);

OPENSSL_STACK *OPENSSL_sk_new_null(void);
int OPENSSL_sk_push(OPENSSL_STACK *st, const void *data);
int OPENSSL_sk_num(const OPENSSL_STACK *st);
void *OPENSSL_sk_value(const OPENSSL_STACK *st, int i);
void OPENSSL_sk_free(OPENSSL_STACK *st);

X509_STORE *X509_STORE_new(void);
void X509_STORE_free(X509_STORE *store);
int X509_STORE_add_cert(X509_STORE *store, X509 *x);
int X509_STORE_add_crl(X509_STORE *store, X509_CRL *x);

X509_STORE_CTX *X509_STORE_CTX_new(void);
void X509_STORE_CTX_free(X509_STORE_CTX *ctx);
int X509_STORE_CTX_init(X509_STORE_CTX *ctx, X509_STORE *store, X509 *target,
                        OPENSSL_STACK *untrusted);
int X509_STORE_CTX_set_purpose(X509_STORE_CTX *ctx, int purpose);
X509_VERIFY_PARAM *X509_STORE_CTX_get0_param(const X509_STORE_CTX *ctx);
int X509_VERIFY_PARAM_set_flags(X509_VERIFY_PARAM *param, unsigned long flags);
void X509_VERIFY_PARAM_set_time(X509_VERIFY_PARAM *param, time_t t);
void X509_STORE_CTX_set_verify_cb(X509_STORE_CTX *ctx, int (*verify)(int, X509_STORE_CTX *));
int X509_verify_cert(X509_STORE_CTX *ctx);
int X509_STORE_CTX_get_error(const X509_STORE_CTX *ctx);
void X509_STORE_CTX_set_error(X509_STORE_CTX *ctx, int s);
int X509_STORE_CTX_get_error_depth(const X509_STORE_CTX *ctx);
OPENSSL_STACK *X509_STORE_CTX_get0_chain(const X509_STORE_CTX *ctx);
X509_CRL *X509_STORE_CTX_get0_current_crl(const X509_STORE_CTX *ctx);
X509 *X509_STORE_CTX_get0_current_issuer(const X509_STORE_CTX *ctx);
const char *X509_verify_cert_error_string(long n);
"""


@dataclass(frozen=True)
class Result:
    """What ``X509_verify_cert`` said: ``error`` is an ``X509_V_ERR_*`` code (0 = valid),
    ``depth`` the position in the path it concerns (0 = the leaf)."""

    error: int
    depth: int = 0
    message: str = ""
    chain: tuple[bytes, ...] = field(default=(), repr=False)  # DER, leaf first, when valid

    @property
    def ok(self) -> bool:
        return self.error == X509_V_OK


class _Binding:
    def __init__(self) -> None:
        import cffi

        sm2.openssl_version()  # loads and self-tests libcrypto (and fails if it is unusable)
        self.ffi = ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        self.lib = lib = ffi.dlopen(sm2._library_name)  # same library, already loaded
        self.sm2_nid = lib.OBJ_txt2nid(SM2_WITH_SM3_OID.encode())
        if self.sm2_nid <= 0:
            raise sm2.SM2Error("this OpenSSL does not know SM2-with-SM3")
        # One callback for all calls: it keeps no state of its own, and cffi closures
        # are a limited resource not to be made per verification.
        self.callback = ffi.callback("int(int, X509_STORE_CTX *)", _on_verify,
                                     error=0, onerror=_on_callback_error)


_binding: _Binding | None = None
_lock = threading.Lock()


def _get() -> _Binding:
    global _binding
    if _binding is None:
        with _lock:
            if _binding is None:
                _binding = _Binding()
    return _binding


def _i2d(b: _Binding, encode: Callable[..., int], obj: Any) -> bytes:
    size = encode(obj, b.ffi.NULL)
    if size <= 0:
        b.lib.ERR_clear_error()
        raise ValueError("OpenSSL could not encode the object")
    buf = b.ffi.new("unsigned char[]", size)
    encode(obj, b.ffi.new("unsigned char **", buf))
    return b.ffi.buffer(buf, size)[:]


def _d2i(b: _Binding, decode: Callable[..., Any], free: Any, der: bytes, what: str) -> Any:
    buf = b.ffi.from_buffer("unsigned char[]", der)
    pp = b.ffi.new("const unsigned char **", buf)
    obj = decode(b.ffi.NULL, pp, len(der))
    if obj == b.ffi.NULL:
        b.lib.ERR_clear_error()
        raise ValueError(f"OpenSSL cannot read the {what}")
    obj = b.ffi.gc(obj, free)
    if pp[0] - buf != len(der):
        raise ValueError(f"trailing data after the {what}")
    return obj


def _load_cert(b: _Binding, der: bytes) -> Any:
    cert = _d2i(b, b.lib.d2i_X509, b.lib.X509_free, der, "certificate")
    if b.lib.X509_get_signature_nid(cert) == b.sm2_nid:
        dist_id = b.lib.ASN1_OCTET_STRING_new()
        if dist_id == b.ffi.NULL:
            raise MemoryError("ASN1_OCTET_STRING_new")
        if b.lib.ASN1_OCTET_STRING_set(dist_id, DISTINGUISHING_ID, len(DISTINGUISHING_ID)) != 1:
            b.lib.ASN1_OCTET_STRING_free(dist_id)
            raise MemoryError("ASN1_OCTET_STRING_set")
        b.lib.X509_set0_distinguishing_id(cert, dist_id)  # freed with the certificate
    return cert


def self_signed(der: bytes) -> bool:
    """Whether the certificate is self-signed, its own signature checked (with the
    distinguishing ID when it is SM2)."""
    b = _get()
    cert = _load_cert(b, der)
    ok = b.lib.X509_self_signed(cert, 1) == 1
    b.lib.ERR_clear_error()
    return ok


def verify(leaf: bytes, *, roots: Sequence[bytes], untrusted: Sequence[bytes] = (),
           crls: Sequence[bytes] | None = None, at: dt.datetime | None = None) -> Result:
    """Verify the DER certificate ``leaf`` for client authentication ("sslclient")
    against the trust anchors ``roots``, completing the path with ``untrusted``.

    With ``crls`` (DER CRLs; an empty list counts) revocation is checked as the module
    docstring says. ``at`` is the verification time (default: now). Raises
    ``ValueError`` for something OpenSSL cannot read, :class:`idp.crypto.sm2.SM2Error`
    when no usable OpenSSL 3 is present."""
    b = _get()
    ffi, lib = b.ffi, b.lib
    target = _load_cert(b, leaf)
    anchors = [_load_cert(b, der) for der in roots]
    helpers = [_load_cert(b, der) for der in untrusted]
    revocations = [_d2i(b, lib.d2i_X509_CRL, lib.X509_CRL_free, der, "CRL")
                   for der in crls or ()]
    when = at or dt.datetime.now(dt.UTC)

    store = lib.X509_STORE_new()
    if store == ffi.NULL:
        raise MemoryError("X509_STORE_new")
    stack = ctx = ffi.NULL
    try:
        for cert in anchors:
            if lib.X509_STORE_add_cert(store, cert) != 1:
                raise MemoryError("X509_STORE_add_cert")
        for crl in revocations:
            if lib.X509_STORE_add_crl(store, crl) != 1:
                raise MemoryError("X509_STORE_add_crl")
        stack = lib.OPENSSL_sk_new_null()
        if stack == ffi.NULL:
            raise MemoryError("OPENSSL_sk_new_null")
        for cert in helpers:
            if lib.OPENSSL_sk_push(stack, cert) <= 0:
                raise MemoryError("OPENSSL_sk_push")
        ctx = lib.X509_STORE_CTX_new()
        if ctx == ffi.NULL or lib.X509_STORE_CTX_init(ctx, store, target, stack) != 1:
            raise MemoryError("X509_STORE_CTX_init")
        if lib.X509_STORE_CTX_set_purpose(ctx, _PURPOSE_SSL_CLIENT) != 1:
            raise sm2.SM2Error("X509_STORE_CTX_set_purpose(sslclient) failed")
        flags = 0
        if crls is not None:
            flags |= _FLAG_CRL_CHECK | _FLAG_CRL_CHECK_ALL
        if not all(lib.X509_self_signed(cert, 1) == 1 for cert in anchors):
            flags |= _FLAG_PARTIAL_CHAIN
        param = lib.X509_STORE_CTX_get0_param(ctx)
        lib.X509_VERIFY_PARAM_set_flags(param, flags)
        lib.X509_VERIFY_PARAM_set_time(param, int(when.timestamp()))
        lib.X509_STORE_CTX_set_verify_cb(ctx, b.callback)
        if lib.X509_verify_cert(ctx) == 1:
            path = lib.X509_STORE_CTX_get0_chain(ctx)
            chain = tuple(_i2d(b, lib.i2d_X509, lib.OPENSSL_sk_value(path, i))
                          for i in range(lib.OPENSSL_sk_num(path)))
            return Result(X509_V_OK, 0, "ok", chain)
        error = lib.X509_STORE_CTX_get_error(ctx) or X509_V_ERR_UNSPECIFIED
        message = ffi.string(lib.X509_verify_cert_error_string(error)).decode(errors="replace")
        return Result(error, lib.X509_STORE_CTX_get_error_depth(ctx), message)
    finally:
        if ctx != ffi.NULL:
            lib.X509_STORE_CTX_free(ctx)
        if stack != ffi.NULL:
            lib.OPENSSL_sk_free(stack)  # the certificates in it are freed by ffi.gc
        lib.X509_STORE_free(store)
        lib.ERR_clear_error()


# -- the verify callback ----------------------------------------------------------------

def _on_verify(ok: int, ctx: Any) -> int:
    if ok:
        return 1
    b = _get()
    error = b.lib.X509_STORE_CTX_get_error(ctx)
    depth = b.lib.X509_STORE_CTX_get_error_depth(ctx)
    excused = (
        (error in (X509_V_ERR_UNABLE_TO_GET_CRL, X509_V_ERR_DIFFERENT_CRL_SCOPE) and depth > 0)
        or (error == X509_V_ERR_CRL_SIGNATURE_FAILURE and _crl_signed_with_standard_id(b, ctx))
    )
    if not excused:
        return 0
    b.lib.X509_STORE_CTX_set_error(ctx, X509_V_OK)
    return 1


def _crl_signed_with_standard_id(b: _Binding, ctx: Any) -> bool:
    """Whether the CRL OpenSSL just failed to verify is an SM2 CRL that the issuer it
    picked did sign, with the standard distinguishing ID."""
    crl = b.lib.X509_STORE_CTX_get0_current_crl(ctx)
    issuer = b.lib.X509_STORE_CTX_get0_current_issuer(ctx)
    if crl == b.ffi.NULL or issuer == b.ffi.NULL:
        return False
    parsed = x509.load_der_x509_crl(_i2d(b, b.lib.i2d_X509_CRL, crl))
    if parsed.signature_algorithm_oid.dotted_string != SM2_WITH_SM3_OID:
        return False
    key = sm2.load_public_key(_i2d(b, b.lib.i2d_X509_PUBKEY,
                                   b.lib.X509_get_X509_PUBKEY(issuer)))
    signature = sm2.signature_from_der(parsed.signature)
    return key.verify(signature, parsed.tbs_certlist_bytes, DISTINGUISHING_ID)


def _on_callback_error(exc_type: type, exc: BaseException, _tb: Any) -> None:
    # The callback answers 0 (fail closed); an SM2-curve-less key or a mangled CRL ends here.
    log.info("certificate verify callback refused: %s: %s", exc_type.__name__, exc)
