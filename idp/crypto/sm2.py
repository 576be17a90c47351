"""SM2 digital signatures with SM3 (GB/T 32918-2016 / GM/T 0003-2012), backed by OpenSSL.

Implementation choice
---------------------
Every elliptic-curve operation runs in the system's OpenSSL 3 ``libcrypto`` (the
``libssl3`` package on Debian), reached through a small ``cffi`` ABI-mode binding
(no compiler, no extra wheel; ``cffi`` is already required by ``argon2-cffi``).
``cryptography`` cannot be used: it has no SM2 curve (``UnsupportedAlgorithm: Curve
1.2.156.10197.1.301``) and no SM2 signature.

Why OpenSSL rather than the faster-looking alternatives:

* OpenSSL computes ``k·G`` (signing) and ``d·G`` (public-key derivation) with the
  Montgomery ladder it reserves for secret scalars (``ossl_ec_scalar_mul_ladder``:
  fixed number of steps, constant-time conditional swaps), and draws the nonce with
  ``BN_priv_rand_range_ex`` from its private DRBG, which reseeds after ``fork()``
  (tested: forked workers never share a nonce). It is maintained, audited and
  already on every machine that runs Python's ``ssl``.
* GmSSL 3.x (the C library inside ``gmssl-pyx``) signs with a booth-window table walk
  whose table index and branches depend on the nonce's bits and that skips leading
  zero windows — a timing leak of exactly the kind that lattice attacks exploit — and
  its SM2 verification is slower than OpenSSL's on this hardware.
* ``gmssl`` (pure Python) is ~25x slower, takes its nonce from ``random`` and mangles
  public keys whose hex starts with ``0``/``4`` (``lstrip('04')``).

This module only hashes (``e = SM3(Z || M)``, with Z cached per key) and moves bytes:
signing calls ``EVP_PKEY_sign`` on the digest (exactly what ``EVP_DigestSign`` does
after hashing), verification calls ``EVP_PKEY_verify``; the contexts are kept per
thread, and the GIL is released during the C calls. The Python layer costs ~5 µs of the
~280 µs an operation takes, about what ``openssl speed sm2`` spends per operation on
``EVP_DigestSignInit`` and recomputing Z, so throughput equals OpenSSL's own
(``bench/sm2_bench.py``: 1.00x in an interleaved A/B). No constant-time SM2 signer
faster than OpenSSL's was available here; a faster non-constant-time one is not wanted.

Formats
-------
* signature: ``r || s``, 32 bytes each, big-endian (the JWS form); ``signature_to_der``
  / ``signature_from_der`` convert to and from OpenSSL's DER ``SEQUENCE {r, s}``;
* public key: ``SubjectPublicKeyInfo`` (id-ecPublicKey + the SM2 curve OID), PEM or DER,
  which ``openssl pkey -pubin`` reads;
* private key: PKCS#8 (optionally encrypted), PEM or DER; any SM2 private key OpenSSL
  can decode (PKCS#8, encrypted PKCS#8, SEC1 ``EC PRIVATE KEY``) can be loaded.
"""

from __future__ import annotations

import base64
import secrets
import threading
from typing import Any, Literal

from .sm3 import SM3Hash, sm3_new

__all__ = [
    "A",
    "B",
    "DEFAULT_UID",
    "GX",
    "GY",
    "N",
    "P",
    "SIGNATURE_SIZE",
    "SM2Error",
    "SM2PrivateKey",
    "SM2PublicKey",
    "compute_z",
    "generate_private_key",
    "load_key",
    "load_private_key",
    "load_public_key",
    "openssl_version",
    "signature_from_der",
    "signature_to_der",
]

# Recommended curve parameters, GB/T 32918.5-2017.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

#: Default signer ID of GM/T 0009-2012 (and of OpenSSL's, GmSSL's and most CAs' SM2).
DEFAULT_UID = b"1234567812345678"
SIGNATURE_SIZE = 64
_COORD = 32

_OID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
_OID_SM2 = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301
#: DER prefix of an SM2 SubjectPublicKeyInfo; the 64 bytes of x || y follow.
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200") + b"\x04"
_CURVE_Z_PART = b"".join(v.to_bytes(_COORD, "big") for v in (A, B, GX, GY))

# OSSL_KEYMGMT_SELECT_*: EVP_PKEY_KEYPAIR.
_SELECT_KEYPAIR = 0x87
# OpenSSL keeps these ``const char *`` in its encoder context without copying them:
# they must outlive the call, so they are module constants, never temporaries.
_OUTPUT_TYPES = {"PEM": b"PEM", "DER": b"DER"}
_PRIVATE_KEY_INFO = b"PrivateKeyInfo"


class SM2Error(Exception):
    """OpenSSL reported a failure (missing SM2 support, out of memory, bad input...)."""


# ---------------------------------------------------------------------------------------
# libcrypto binding (cffi, ABI mode)

_CDEF = """
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct bignum_st BIGNUM;
typedef struct ossl_decoder_ctx_st OSSL_DECODER_CTX;
typedef struct ossl_encoder_ctx_st OSSL_ENCODER_CTX;

unsigned long OpenSSL_version_num(void);
const char *OpenSSL_version(int type);

unsigned long ERR_get_error(void);
void ERR_clear_error(void);
void ERR_error_string_n(unsigned long e, char *buf, size_t len);

void CRYPTO_clear_free(void *ptr, size_t num, const char *file, int line);
void BN_clear_free(BIGNUM *a);
int BN_bn2binpad(const BIGNUM *a, unsigned char *to, int tolen);

EVP_PKEY *d2i_AutoPrivateKey(EVP_PKEY **a, const unsigned char **pp, long length);
EVP_PKEY *d2i_PUBKEY(EVP_PKEY **a, const unsigned char **pp, long length);
void EVP_PKEY_free(EVP_PKEY *pkey);
int EVP_PKEY_is_a(const EVP_PKEY *pkey, const char *name);
int EVP_PKEY_get_octet_string_param(const EVP_PKEY *pkey, const char *key_name,
                                    unsigned char *buf, size_t max_buf_sz, size_t *out_len);
int EVP_PKEY_get_utf8_string_param(const EVP_PKEY *pkey, const char *key_name,
                                   char *str, size_t max_buf_sz, size_t *out_len);
int EVP_PKEY_get_bn_param(const EVP_PKEY *pkey, const char *key_name, BIGNUM **bn);

EVP_PKEY_CTX *EVP_PKEY_CTX_new(EVP_PKEY *pkey, void *e);
void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx);
int EVP_PKEY_sign_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen,
                  const unsigned char *tbs, size_t tbslen);
int EVP_PKEY_verify_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_verify(EVP_PKEY_CTX *ctx, const unsigned char *sig, size_t siglen,
                    const unsigned char *tbs, size_t tbslen);

OSSL_DECODER_CTX *OSSL_DECODER_CTX_new_for_pkey(EVP_PKEY **pkey, const char *input_type,
        const char *input_struct, const char *keytype, int selection,
        void *libctx, const char *propquery);
int OSSL_DECODER_CTX_set_passphrase(OSSL_DECODER_CTX *ctx, const unsigned char *kstr,
                                    size_t klen);
int OSSL_DECODER_from_data(OSSL_DECODER_CTX *ctx, const unsigned char **pdata,
                           size_t *pdata_len);
void OSSL_DECODER_CTX_free(OSSL_DECODER_CTX *ctx);

OSSL_ENCODER_CTX *OSSL_ENCODER_CTX_new_for_pkey(const EVP_PKEY *pkey, int selection,
        const char *output_type, const char *output_struct, const char *propquery);
int OSSL_ENCODER_CTX_set_cipher(OSSL_ENCODER_CTX *ctx, const char *cipher_name,
                                const char *propquery);
int OSSL_ENCODER_CTX_set_passphrase(OSSL_ENCODER_CTX *ctx, const unsigned char *kstr,
                                    size_t klen);
int OSSL_ENCODER_to_data(OSSL_ENCODER_CTX *ctx, unsigned char **pdata, size_t *pdata_len);
void OSSL_ENCODER_CTX_free(OSSL_ENCODER_CTX *ctx);
"""

_LIB_NAMES = ("libcrypto.so.3", "libcrypto.3.dylib", "libcrypto-3-x64.dll", "crypto")
_binding: tuple[Any, Any] | None = None  # published once the self-test has passed
_loading: tuple[Any, Any] | None = None  # under test; only the thread holding the lock sees it
_binding_lock = threading.RLock()
_library_name = ""  # what dlopen() was given, for tools (bench/sm2_bench.py)


def _load() -> tuple[Any, Any]:
    import ctypes.util

    import cffi

    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    errors = []
    candidates = list(_LIB_NAMES)
    found = ctypes.util.find_library("crypto")
    if found:
        candidates.insert(1, found)
    for name in candidates:
        try:
            lib = ffi.dlopen(name)
            version = lib.OpenSSL_version_num()
        except (OSError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        if version < 0x30000000:
            errors.append(f"{name}: OpenSSL {version:#x} is older than 3.0")
            continue
        global _library_name
        _library_name = name
        return ffi, lib
    raise SM2Error("no usable OpenSSL 3 libcrypto: " + "; ".join(errors))


def _openssl() -> tuple[Any, Any]:
    global _binding, _loading
    if _binding is not None:
        return _binding
    with _binding_lock:
        if _binding is not None:
            return _binding
        if _loading is not None:  # re-entered from _self_test, same thread
            return _loading
        _loading = _load()
        try:
            _self_test()
            _binding = _loading
        finally:
            _loading = None
        return _binding


def openssl_version() -> str:
    """The version string of the libcrypto in use, e.g. ``OpenSSL 3.0.19 27 Jan 2026``."""
    ffi, lib = _openssl()
    return ffi.string(lib.OpenSSL_version(0)).decode()


def _error(lib: Any, ffi: Any, message: str) -> SM2Error:
    """Drain OpenSSL's (thread-local) error queue into an exception."""
    details = []
    buf = ffi.new("char[]", 256)
    while code := lib.ERR_get_error():
        lib.ERR_error_string_n(code, buf, 256)
        details.append(ffi.string(buf).decode(errors="replace"))
    return SM2Error(f"{message}: {'; '.join(details)}" if details else message)


def _pkey_from_der(ffi: Any, lib: Any, der: bytes | bytearray, private: bool) -> Any:
    buf = ffi.from_buffer("unsigned char[]", der)  # no copy: the caller wipes ``der``
    pp = ffi.new("const unsigned char **", buf)
    if private:
        pkey = lib.d2i_AutoPrivateKey(ffi.NULL, pp, len(der))
    else:
        pkey = lib.d2i_PUBKEY(ffi.NULL, pp, len(der))
    if pkey == ffi.NULL:
        raise _error(lib, ffi, "OpenSSL rejected the SM2 key")
    pkey = ffi.gc(pkey, lib.EVP_PKEY_free)
    # A key on the SM2 curve must come out as an SM2 key: an "EC" key would make
    # EVP_PKEY_sign produce an ECDSA signature instead.
    if lib.EVP_PKEY_is_a(pkey, b"SM2") != 1:
        raise SM2Error("OpenSSL did not load the key as an SM2 key")
    return pkey


def _pub_of(ffi: Any, lib: Any, pkey: Any) -> bytes:
    out = ffi.new("unsigned char[]", 80)
    out_len = ffi.new("size_t *")
    if lib.EVP_PKEY_get_octet_string_param(pkey, b"pub", out, 80, out_len) != 1:
        raise _error(lib, ffi, "cannot read the SM2 public key")
    return ffi.buffer(out, out_len[0])[:]


# ---------------------------------------------------------------------------------------
# helpers


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _decode_point(data: bytes) -> tuple[int, int]:
    """SEC 1 point decoding (uncompressed ``04`` or compressed ``02``/``03``)."""
    if len(data) == 1 + 2 * _COORD and data[0] == 4:
        x = int.from_bytes(data[1 : 1 + _COORD], "big")
        y = int.from_bytes(data[1 + _COORD :], "big")
    elif len(data) == 1 + _COORD and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise ValueError("SM2 point x coordinate out of range")
        rhs = (x * x * x + A * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)  # p ≡ 3 (mod 4)
        if y * y % P != rhs:
            raise ValueError("SM2 point is not on the curve")
        if (y & 1) != (data[0] & 1):
            y = P - y
    else:
        raise ValueError("malformed SM2 point encoding")
    return x, y


def compute_z(x: int, y: int, uid: bytes = DEFAULT_UID) -> bytes:
    """``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` (GB/T 32918.2 §5.5)."""
    uid = bytes(uid)
    if len(uid) * 8 > 0xFFFF:
        raise ValueError("SM2 user ID too long")
    h = sm3_new((len(uid) * 8).to_bytes(2, "big"))
    h.update(uid)
    h.update(_CURVE_Z_PART)
    h.update(x.to_bytes(_COORD, "big"))
    h.update(y.to_bytes(_COORD, "big"))
    return h.digest()


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(value)) + value


def _der_uint_raw(value: bytes) -> bytes:
    """DER INTEGER of a big-endian unsigned value."""
    value = value.lstrip(b"\x00") or b"\x00"
    if value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + bytes([len(value)]) + value


def signature_to_der(signature: bytes) -> bytes:
    """``r || s`` (64 bytes) → DER ``SEQUENCE { INTEGER r, INTEGER s }`` (OpenSSL's form)."""
    if len(signature) != SIGNATURE_SIZE:
        raise ValueError("SM2 signature must be 64 bytes")
    body = _der_uint_raw(signature[:_COORD]) + _der_uint_raw(signature[_COORD:])
    return b"\x30" + bytes([len(body)]) + body


def _der_integer(der: bytes, pos: int) -> tuple[int, int]:
    """A minimal, non-negative DER INTEGER at ``pos``: (value, next position)."""
    if pos + 2 > len(der) or der[pos] != 0x02:
        raise ValueError("malformed DER signature")
    length = der[pos + 1]
    start, end = pos + 2, pos + 2 + length
    if length == 0 or length > _COORD + 1 or end > len(der):
        raise ValueError("malformed DER signature")
    if der[start] & 0x80 or (length > 1 and der[start] == 0 and not der[start + 1] & 0x80):
        raise ValueError("malformed DER integer")  # negative, or not minimal
    return int.from_bytes(der[start:end], "big"), end


def signature_from_der(der: bytes) -> bytes:
    """Strict DER ``SEQUENCE { r, s }`` → ``r || s`` (64 bytes). Values outside
    [1, n-1] are rejected, as OpenSSL's verifier would.

    An SM2 signature is at most 72 bytes, so DER allows only short-form lengths here.
    """
    der = bytes(der)
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise ValueError("malformed DER signature")
    r, pos = _der_integer(der, 2)
    s, pos = _der_integer(der, pos)
    if pos != len(der):
        raise ValueError("malformed DER signature")
    if not (0 < r < N and 0 < s < N):
        raise ValueError("SM2 signature value out of range")
    return r.to_bytes(_COORD, "big") + s.to_bytes(_COORD, "big")


def _pem(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    head, tail = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    return b"\n".join([head, *lines, tail]) + b"\n"


def _pkcs8_der(d: int, point: bytes | None = None) -> bytearray:
    """PKCS#8 ``PrivateKeyInfo`` holding ``ECPrivateKey { 1, d [, publicKey] }`` on the
    SM2 curve. Without ``point`` OpenSSL derives the public key (``d·G``, by its
    constant-time ladder)."""
    body = b"\x02\x01\x01" + _der_tlv(0x04, d.to_bytes(_COORD, "big"))
    if point is not None:
        body += _der_tlv(0xA1, _der_tlv(0x03, b"\x00" + point))
    algorithm = _der_tlv(0x30, _OID_EC_PUBLIC_KEY + _OID_SM2)
    inner = _der_tlv(0x04, _der_tlv(0x30, body))
    return bytearray(_der_tlv(0x30, b"\x02\x01\x00" + algorithm + inner))


# ---------------------------------------------------------------------------------------
# keys


class SM2PublicKey:
    """An SM2 public key: a validated point on the SM2 curve, plus its OpenSSL handle."""

    __slots__ = ("_pkey", "_tls", "_z_hash", "x", "y")

    def __init__(self, x: int, y: int) -> None:
        if not (isinstance(x, int) and isinstance(y, int)) or not _on_curve(x, y):
            raise ValueError("SM2 public key is not a point on the SM2 curve")
        self.x = x
        self.y = y
        self._z_hash: SM3Hash | None = None
        self._tls = threading.local()
        ffi, lib = _openssl()
        self._pkey = _pkey_from_der(ffi, lib, self.public_bytes("DER"), private=False)

    @classmethod
    def from_encoded_point(cls, data: bytes) -> SM2PublicKey:
        """From SEC 1 bytes: ``04 || x || y`` (65 bytes) or compressed ``02``/``03 || x``."""
        return cls(*_decode_point(bytes(data)))

    def encoded_point(self, compressed: bool = False) -> bytes:
        x = self.x.to_bytes(_COORD, "big")
        if compressed:
            return bytes([2 | (self.y & 1)]) + x
        return b"\x04" + x + self.y.to_bytes(_COORD, "big")

    def public_bytes(self, encoding: Literal["PEM", "DER"] = "PEM") -> bytes:
        """``SubjectPublicKeyInfo`` (id-ecPublicKey, SM2 curve), as OpenSSL writes it."""
        der = _SPKI_PREFIX + self.x.to_bytes(_COORD, "big") + self.y.to_bytes(_COORD, "big")
        if encoding == "DER":
            return der
        if encoding == "PEM":
            return _pem("PUBLIC KEY", der)
        raise ValueError(f"unknown encoding {encoding!r}")

    def z(self, uid: bytes = DEFAULT_UID) -> bytes:
        return compute_z(self.x, self.y, uid)

    def digest(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        """``e = SM3(Z || M)``, the value that is actually signed."""
        if uid == DEFAULT_UID:
            base = self._z_hash
            if base is None:
                base = self._z_hash = sm3_new(compute_z(self.x, self.y))
            h = base.copy()
        else:
            h = sm3_new(compute_z(self.x, self.y, uid))
        h.update(data)
        return h.digest()

    def verify(self, signature: bytes, data: bytes, uid: bytes = DEFAULT_UID) -> bool:
        """True iff ``signature`` (``r || s``) is a valid SM2 signature of ``data``.
        Never raises for a malformed signature: it is simply not valid."""
        return self.verify_digest(signature, self.digest(data, uid))

    def verify_digest(self, signature: bytes, digest: bytes) -> bool:
        """Verify ``r || s`` over a precomputed ``e = SM3(Z || M)``.

        The checks OpenSSL's ``ossl_sm2_internal_verify`` makes — exact encoding,
        ``r, s`` in [1, n-1], ``(r + s) mod n != 0`` — are made here first, so that a
        malformed signature costs no C call and leaves nothing on OpenSSL's error queue;
        OpenSSL then repeats them and checks ``r == (e + x1) mod n``.
        """
        if len(signature) != SIGNATURE_SIZE or len(digest) != _COORD:
            return False
        signature = bytes(signature)
        r = int.from_bytes(signature[:_COORD], "big")
        s = int.from_bytes(signature[_COORD:], "big")
        if not (0 < r < N and 0 < s < N) or (r + s) % N == 0:
            return False
        der = signature_to_der(signature)
        ffi, lib = _binding or _openssl()
        ctx = getattr(self._tls, "ctx", None)
        if ctx is None:
            ctx = lib.EVP_PKEY_CTX_new(self._pkey, ffi.NULL)
            if ctx == ffi.NULL:
                lib.ERR_clear_error()
                return False
            ctx = ffi.gc(ctx, lib.EVP_PKEY_CTX_free)
            if lib.EVP_PKEY_verify_init(ctx) != 1:
                lib.ERR_clear_error()
                return False
            self._tls.ctx = ctx
        rc = lib.EVP_PKEY_verify(ctx, der, len(der), bytes(digest), _COORD)
        if rc == 1:
            return True
        lib.ERR_clear_error()
        if rc < 0:  # an error, not a mismatch: start from a fresh context next time
            self._tls.ctx = None
        return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SM2PublicKey):
            return NotImplemented
        return (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((SM2PublicKey, self.x, self.y))

    def __repr__(self) -> str:
        return f"<SM2PublicKey x={self.x:064x}>"


class SM2PrivateKey:
    """An SM2 private key, held by OpenSSL. Build with ``generate`` / ``from_private_value``
    / ``load_private_key``."""

    __slots__ = ("_pkey", "_public", "_tls")

    def __init__(self, _pkey: Any, _public: SM2PublicKey) -> None:
        self._pkey = _pkey
        self._public = _public
        self._tls = threading.local()

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        """A new key; ``d`` is drawn uniformly from [1, n-2] by ``secrets`` (os.urandom)."""
        return cls.from_private_value(1 + secrets.randbelow(N - 2))

    @classmethod
    def from_private_value(cls, d: int) -> SM2PrivateKey:
        """The key with private scalar ``d`` (1 <= d <= n-2, GB/T 32918.1 §6.1)."""
        if not isinstance(d, int) or not 1 <= d <= N - 2:
            raise ValueError("SM2 private key must be in [1, n-2]")
        ffi, lib = _openssl()
        der = _pkcs8_der(d)
        try:
            pkey = _pkey_from_der(ffi, lib, der, private=True)
        finally:
            der[:] = bytes(len(der))
        public = SM2PublicKey.from_encoded_point(_pub_of(ffi, lib, pkey))
        # Load it again with the public key inside, so that the PKCS#8 OpenSSL writes
        # for it carries the public key too, as ``openssl genpkey`` output does.
        der = _pkcs8_der(d, public.encoded_point())
        try:
            pkey = _pkey_from_der(ffi, lib, der, private=True)
        finally:
            der[:] = bytes(len(der))
        return cls(pkey, public)

    @classmethod
    def from_bytes(cls, data: bytes) -> SM2PrivateKey:
        """From the 32-byte big-endian private scalar."""
        if len(data) != _COORD:
            raise ValueError("SM2 private key must be 32 bytes")
        return cls.from_private_value(int.from_bytes(data, "big"))

    def public_key(self) -> SM2PublicKey:
        return self._public

    def private_bytes_raw(self) -> bytes:
        """The 32-byte big-endian private scalar (for JWK ``d``); read from OpenSSL."""
        ffi, lib = _openssl()
        bn = ffi.new("BIGNUM **")
        if lib.EVP_PKEY_get_bn_param(self._pkey, b"priv", bn) != 1:
            raise _error(lib, ffi, "cannot read the SM2 private key")
        out = ffi.new("unsigned char[]", _COORD)
        try:
            if lib.BN_bn2binpad(bn[0], out, _COORD) != _COORD:
                raise _error(lib, ffi, "cannot read the SM2 private key")
            return ffi.buffer(out, _COORD)[:]
        finally:
            lib.BN_clear_free(bn[0])
            ffi.memmove(out, bytes(_COORD), _COORD)

    def private_value(self) -> int:
        return int.from_bytes(self.private_bytes_raw(), "big")

    def private_bytes(
        self, encoding: Literal["PEM", "DER"] = "PEM", password: bytes | str | None = None
    ) -> bytes:
        """PKCS#8, written by OpenSSL; with ``password``, encrypted (PBES2, AES-256-CBC)."""
        output_type = _OUTPUT_TYPES.get(encoding)
        if output_type is None:
            raise ValueError(f"unknown encoding {encoding!r}")
        ffi, lib = _openssl()
        ctx = lib.OSSL_ENCODER_CTX_new_for_pkey(
            self._pkey, _SELECT_KEYPAIR, output_type, _PRIVATE_KEY_INFO, ffi.NULL
        )
        if ctx == ffi.NULL:
            raise _error(lib, ffi, "cannot encode the SM2 private key")
        ctx = ffi.gc(ctx, lib.OSSL_ENCODER_CTX_free)
        if password is not None:
            pw = password.encode() if isinstance(password, str) else bytes(password)
            if (
                lib.OSSL_ENCODER_CTX_set_cipher(ctx, b"AES-256-CBC", ffi.NULL) != 1
                or lib.OSSL_ENCODER_CTX_set_passphrase(ctx, pw, len(pw)) != 1
            ):
                raise _error(lib, ffi, "cannot encrypt the SM2 private key")
        out = ffi.new("unsigned char **")
        out_len = ffi.new("size_t *")
        if lib.OSSL_ENCODER_to_data(ctx, out, out_len) != 1:
            raise _error(lib, ffi, "cannot encode the SM2 private key")
        try:
            return ffi.buffer(out[0], out_len[0])[:]
        finally:
            lib.CRYPTO_clear_free(out[0], out_len[0], b"sm2.py", 0)

    def sign(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        """SM2-sign ``data`` (with ``Z`` of ``uid``): 64 bytes ``r || s``. The nonce is
        drawn inside OpenSSL from its DRBG; Python's ``random`` is never involved."""
        return self._sign(self._public.digest(data, uid))

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a precomputed ``e = SM3(Z || M)`` (32 bytes): 64 bytes ``r || s``."""
        if len(digest) != _COORD:
            raise ValueError("SM2 digest must be 32 bytes")
        return self._sign(bytes(digest))

    def _sign(self, digest: bytes) -> bytes:
        ffi, lib = _binding or _openssl()
        state = getattr(self._tls, "state", None)
        if state is None:
            ctx = lib.EVP_PKEY_CTX_new(self._pkey, ffi.NULL)
            if ctx == ffi.NULL:
                raise _error(lib, ffi, "SM2 signing failed")
            ctx = ffi.gc(ctx, lib.EVP_PKEY_CTX_free)
            if lib.EVP_PKEY_sign_init(ctx) != 1:
                raise _error(lib, ffi, "SM2 signing failed")
            # per thread: the context and the output buffer are reused, never shared
            state = self._tls.state = (ctx, ffi.new("unsigned char[]", 80), ffi.new("size_t *"))
        ctx, out, out_len = state
        out_len[0] = 80
        if lib.EVP_PKEY_sign(ctx, out, out_len, digest, _COORD) != 1:
            self._tls.state = None
            raise _error(lib, ffi, "SM2 signing failed")
        return signature_from_der(ffi.buffer(out, out_len[0])[:])

    def __repr__(self) -> str:
        return f"<SM2PrivateKey public x={self._public.x:064x}>"


def generate_private_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


def _decode(data: bytes, password: bytes | str | None, selection: int) -> Any:
    ffi, lib = _openssl()
    out = ffi.new("EVP_PKEY **")
    ctx = lib.OSSL_DECODER_CTX_new_for_pkey(
        out, ffi.NULL, ffi.NULL, ffi.NULL, selection, ffi.NULL, ffi.NULL
    )
    if ctx == ffi.NULL:
        raise _error(lib, ffi, "cannot set up the key decoder")
    ctx = ffi.gc(ctx, lib.OSSL_DECODER_CTX_free)
    if password is not None:
        pw = password.encode() if isinstance(password, str) else bytes(password)
        lib.OSSL_DECODER_CTX_set_passphrase(ctx, pw, len(pw))
    buf = ffi.new("unsigned char[]", bytes(data))
    pp = ffi.new("const unsigned char **", buf)
    left = ffi.new("size_t *", len(data))
    ok = lib.OSSL_DECODER_from_data(ctx, pp, left)
    ffi.memmove(buf, bytes(len(data)), len(data))
    if ok != 1 or out[0] == ffi.NULL:
        lib.ERR_clear_error()
        raise ValueError("could not decode the key (not a key, or wrong/missing password)")
    pkey = ffi.gc(out[0], lib.EVP_PKEY_free)
    group = ffi.new("char[]", 64)
    group_len = ffi.new("size_t *")
    is_sm2 = lib.EVP_PKEY_is_a(pkey, b"SM2") == 1 or (
        lib.EVP_PKEY_get_utf8_string_param(pkey, b"group", group, 64, group_len) == 1
        and ffi.string(group).upper() == b"SM2"
    )
    lib.ERR_clear_error()
    if not is_sm2:
        raise ValueError("not an SM2 key")
    return pkey


def load_key(data: bytes, password: bytes | str | None = None) -> SM2PrivateKey | SM2PublicKey:
    """Load a PEM or DER SM2 key made by OpenSSL (or anything writing the same formats):
    a private key if ``data`` holds one, else a public key."""
    ffi, lib = _openssl()
    pkey = _decode(data, password, 0)
    bn = ffi.new("BIGNUM **")
    if lib.EVP_PKEY_get_bn_param(pkey, b"priv", bn) != 1:
        lib.ERR_clear_error()
        return SM2PublicKey.from_encoded_point(_pub_of(ffi, lib, pkey))
    raw = ffi.new("unsigned char[]", _COORD)
    try:
        if lib.BN_bn2binpad(bn[0], raw, _COORD) != _COORD:
            raise ValueError("SM2 private key out of range")
        key = SM2PrivateKey.from_bytes(ffi.buffer(raw, _COORD)[:])
    finally:
        lib.BN_clear_free(bn[0])
        ffi.memmove(raw, bytes(_COORD), _COORD)
    given = _pub_of(ffi, lib, pkey)
    if _decode_point(given) != (key.public_key().x, key.public_key().y):
        raise ValueError("SM2 private key does not match its public key")
    return key


def load_private_key(data: bytes, password: bytes | str | None = None) -> SM2PrivateKey:
    key = load_key(data, password)
    if not isinstance(key, SM2PrivateKey):
        raise ValueError("not an SM2 private key")
    return key


def load_public_key(data: bytes) -> SM2PublicKey:
    """Load an SM2 public key (``SubjectPublicKeyInfo``, PEM or DER); given a private
    key, its public half."""
    key = load_key(data)
    return key.public_key() if isinstance(key, SM2PrivateKey) else key


# ---------------------------------------------------------------------------------------
# known-answer self-test, run once when libcrypto is first loaded

# GB/T 32918.5-2017 / GM/T 0003.5-2012, annex A: signature on the recommended curve.
_KAT_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
_KAT_X = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
_KAT_Y = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
_KAT_MSG = b"message digest"
_KAT_SIG = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)


def _self_test() -> None:
    pub = SM2PublicKey(_KAT_X, _KAT_Y)
    bad = _KAT_SIG[:-1] + bytes([_KAT_SIG[-1] ^ 1])
    if not pub.verify(_KAT_SIG, _KAT_MSG) or pub.verify(bad, _KAT_MSG):
        raise SM2Error("SM2 known-answer test failed: OpenSSL's SM2 is unusable")
    key = SM2PrivateKey.from_private_value(_KAT_D)
    if key.public_key() != pub or not pub.verify(key.sign(_KAT_MSG), _KAT_MSG):
        raise SM2Error("SM2 known-answer test failed: OpenSSL's SM2 is unusable")
