"""SM2 keys and the ``SM2SM3`` JWS algorithm for joserfc.

Keys are JWKs ``{"kty": "EC", "crv": "SM2", "x": ..., "y": ..., ["d": ...]}`` (coordinates
and ``d`` base64url, 32 bytes each); signatures are ``r || s`` (64 bytes) over
``e = SM3(Z || JWS signing input)``, Z computed with the default user ID
``1234567812345678`` (GM/T 0009). The curve arithmetic is OpenSSL's: see ``sm2``.

Where this plugs into joserfc, and why there
--------------------------------------------
joserfc has three extension points:

1. ``JWSRegistry.register(alg)`` — the registry of JWS algorithms. ``SM2SM3`` is
   registered there like joserfc's own algorithms (``setup_jws_algorithms`` also records
   ``KeySet.algorithm_keys[name]``; so do we). It is *not* marked recommended, so it
   is only accepted where a caller lists it (``algorithms=["SM2SM3"]``), like ES256K.
2. ``ECBinding.register_curve(name, curve)`` — ECKey's curve binding, the hook
   joserfc uses for secp256k1. It maps a ``crv`` to a ``cryptography`` curve class
   and builds every key through ``cryptography``, which has no SM2 curve (it raises
   ``UnsupportedAlgorithm``). An SM2 "curve class" would have to fake cryptography's
   key objects, so this hook cannot carry SM2.
3. ``JWKRegistry.key_types[kty]`` — the class that imports / generates keys of a kty.
   This is the hook used. SM2 keys must stay ``"kty": "EC"``, so the ``"EC"`` entry
   is replaced by ``SM2AwareECKey``, a dispatcher that routes ``crv == "SM2"`` (and
   PEM/DER holding the SM2 curve OID) to ``SM2Key`` and hands everything else to the
   class that was registered before, untouched — P-256 keys still come out as plain
   ``ECKey``. ``jwk.import_key``, ``JWKRegistry.generate_key`` and
   ``KeySet.import_key_set`` all go through this registry, so a JWKS mixing RSA,
   P-256 and SM2 keys imports and resolves by ``kid`` with no other change.

``SM2Key`` subclasses ``ECKey`` (with its own binding to the OpenSSL-backed
``SM2PrivateKey`` / ``SM2PublicKey``) because joserfc checks keys with
``isinstance(key, (OctKey, RSAKey, ECKey, OKPKey))`` before signing or verifying; a key
of any other class would be refused. The ``ES*`` algorithms refuse it by its curve name,
and ``SM2SM3`` refuses every key that is not an ``SM2Key``.

Nothing is patched: the registries are joserfc's own mutable class attributes.
``register_sm2()`` is idempotent and runs on import of this module.
"""

from __future__ import annotations

import base64
import binascii
import threading
from functools import cached_property
from typing import Any, ClassVar, Literal, Self

from cryptography.exceptions import UnsupportedAlgorithm

# The base class of joserfc's key bindings (OctBinding derives from it directly); joserfc
# does not re-export it. The tests pin the behaviour this module relies on.
from joserfc._rfc7517.models import NativeKeyBinding
from joserfc.errors import InvalidExchangeKeyError, InvalidKeyCurveError, KeyParameterError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, JWKRegistry, KeySet
from joserfc.jws import JWSRegistry

from . import sm2

__all__ = [
    "CURVE",
    "SM2SM3",
    "SM2AwareECKey",
    "SM2Binding",
    "SM2Key",
    "SM2SM3Algorithm",
    "register_sm2",
]

#: The JWK ``crv`` of SM2 keys.
CURVE = "SM2"
_NATIVE = (sm2.SM2PrivateKey, sm2.SM2PublicKey)
_SM2_OID_DER = bytes.fromhex("06082a811ccf5501822d")


def _b64_coord(value: object, name: str) -> bytes:
    """A JWK member ``x`` / ``y`` / ``d``: canonical base64url without padding, exactly
    32 bytes (RFC 7518 §6.2.1-2). Canonical, so a key has one JWK and one thumbprint."""
    if not isinstance(value, str):
        raise KeyParameterError(f"'{name}' must be a string")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyParameterError(f"'{name}' is not base64url") from exc
    if len(raw) != 32 or _b64(raw) != value:
        raise KeyParameterError(f"'{name}' must be 32 bytes in unpadded base64url for crv SM2")
    return raw


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SM2Binding(NativeKeyBinding):
    """Converts between JWK dicts / PEM / DER and the native ``sm2`` key objects."""

    key_type = "EC"

    @classmethod
    def convert_raw_key_to_dict(cls, raw_key: Any, private: bool) -> Any:
        public = raw_key.public_key() if isinstance(raw_key, sm2.SM2PrivateKey) else raw_key
        data = {
            "crv": CURVE,
            "x": _b64(public.x.to_bytes(32, "big")),
            "y": _b64(public.y.to_bytes(32, "big")),
        }
        if private:
            data["d"] = _b64(raw_key.private_bytes_raw())
        return data

    @classmethod
    def import_from_dict(cls, value: Any) -> sm2.SM2PrivateKey | sm2.SM2PublicKey:
        if value.get("crv") != CURVE:
            raise InvalidKeyCurveError(f"Invalid crv value: '{value.get('crv')}'")
        x = int.from_bytes(_b64_coord(value.get("x"), "x"), "big")
        y = int.from_bytes(_b64_coord(value.get("y"), "y"), "big")
        try:
            public = sm2.SM2PublicKey(x, y)
            if "d" not in value:
                return public
            private = sm2.SM2PrivateKey.from_bytes(_b64_coord(value["d"], "d"))
        except ValueError as exc:
            raise KeyParameterError(str(exc)) from exc
        if private.public_key() != public:
            raise KeyParameterError("'d' does not match 'x' and 'y'")
        return private

    @classmethod
    def import_from_bytes(
        cls, value: bytes, password: str | bytes | None = None
    ) -> sm2.SM2PrivateKey | sm2.SM2PublicKey:
        try:
            return sm2.load_key(value, password)
        except ValueError as exc:
            raise KeyParameterError(str(exc)) from exc

    @staticmethod
    def as_bytes(
        key: Any,
        encoding: Literal["PEM", "DER"] | None = None,
        private: bool = False,
        password: str | None = None,
    ) -> bytes:
        encoding = encoding or "PEM"
        if private:
            if key.private_key is None:
                raise ValueError("This key is not a private key.")
            return key.private_key.private_bytes(encoding, password)
        return key.public_key.public_bytes(encoding)


class SM2Key(ECKey):
    """A JWK on the SM2 curve: ``{"kty": "EC", "crv": "SM2", "x", "y"[, "d"]}``.

    ``raw_value`` is an ``sm2.SM2PrivateKey`` or ``sm2.SM2PublicKey``.
    """

    binding: ClassVar[type[NativeKeyBinding]] = SM2Binding  # type: ignore[assignment]

    @property
    def is_private(self) -> bool:
        return isinstance(self.raw_value, sm2.SM2PrivateKey)

    @cached_property
    def public_key(self) -> sm2.SM2PublicKey:  # type: ignore[override]
        raw = self.raw_value
        return raw.public_key() if isinstance(raw, sm2.SM2PrivateKey) else raw

    @property
    def private_key(self) -> sm2.SM2PrivateKey | None:  # type: ignore[override]
        raw = self.raw_value
        return raw if isinstance(raw, sm2.SM2PrivateKey) else None

    @property
    def curve_name(self) -> str:
        return CURVE

    @property
    def curve_key_size(self) -> int:
        return 256

    def exchange_derive_key(self, key: Any) -> bytes:
        raise InvalidExchangeKeyError("SM2 keys are for SM2SM3 signatures only")

    @classmethod
    def import_key(  # type: ignore[override]
        cls,
        value: Any,
        parameters: Any = None,
        password: str | bytes | None = None,
    ) -> Self:
        """From a JWK dict, PEM / DER bytes (any SM2 key OpenSSL writes), or a native
        ``sm2`` key object."""
        if isinstance(value, _NATIVE):
            return cls(value, value, parameters)
        if isinstance(value, dict) and value.get("crv") != CURVE:
            raise InvalidKeyCurveError(f"Invalid crv value: '{value.get('crv')}'")
        return super().import_key(value, parameters, password)

    @classmethod
    def generate_key(  # type: ignore[override]
        cls,
        crv: str | None = CURVE,
        parameters: Any = None,
        private: bool = True,
        auto_kid: bool = False,
    ) -> Self:
        """A new SM2 key (private scalar from ``secrets``)."""
        if crv not in (None, CURVE):
            raise InvalidKeyCurveError(f"Invalid crv value: '{crv}'")
        raw = sm2.SM2PrivateKey.generate()
        native = raw if private else raw.public_key()
        key = cls(native, native, parameters)
        if auto_kid:
            key.ensure_kid()
        return key

    @classmethod
    def derive_key(cls, *args: Any, **kwargs: Any) -> Self:  # type: ignore[override]
        raise InvalidKeyCurveError("derive_key is not supported for crv SM2")


def _holds_sm2_oid(value: Any) -> bool:
    """Whether PEM / DER bytes carry the SM2 curve OID (unencrypted keys only)."""
    if isinstance(value, str):
        value = value.encode("ascii", "ignore")
    if not isinstance(value, bytes | bytearray):
        return False
    data = bytes(value)
    if b"-----BEGIN" in data:
        body = b"".join(line for line in data.splitlines() if line and b"-----" not in line)
        try:
            data = base64.b64decode(body)
        except (binascii.Error, ValueError):
            return False
    return _SM2_OID_DER in data


class SM2AwareECKey(ECKey):
    """Stands in for ``ECKey`` in ``JWKRegistry.key_types["EC"]``; never instantiated.

    SM2 input goes to ``SM2Key``, anything else to ``delegate`` (the class registered for
    ``"EC"`` before, normally ``ECKey``), so non-SM2 keys are exactly what they were.
    """

    delegate: ClassVar[type[ECKey]] = ECKey

    def __new__(cls, raw_value: Any, original_value: Any = None, parameters: Any = None) -> Any:
        # joserfc's implicit PEM import instantiates registry classes directly.
        if isinstance(raw_value, _NATIVE):
            return SM2Key(raw_value, original_value, parameters)
        return cls.delegate(raw_value, original_value, parameters)

    @classmethod
    def import_key(  # type: ignore[override]
        cls,
        value: Any,
        parameters: Any = None,
        password: str | bytes | None = None,
    ) -> ECKey:
        if isinstance(value, _NATIVE) or (isinstance(value, dict) and value.get("crv") == CURVE):
            return SM2Key.import_key(value, parameters, password)
        if isinstance(value, dict):
            return cls.delegate.import_key(value, parameters, password)
        if _holds_sm2_oid(value):
            return SM2Key.import_key(value, parameters, password)
        try:
            return cls.delegate.import_key(value, parameters, password)
        except UnsupportedAlgorithm as exc:
            # An encrypted PKCS#8 hides the curve OID: cryptography decrypts it, then
            # refuses the SM2 curve. Try it as SM2 before giving up.
            try:
                return SM2Key.import_key(value, parameters, password)
            except KeyParameterError:
                raise exc from None

    @classmethod
    def generate_key(  # type: ignore[override]
        cls,
        crv: str | None = "P-256",
        parameters: Any = None,
        private: bool = True,
        auto_kid: bool = False,
    ) -> ECKey:
        if crv == CURVE:
            return SM2Key.generate_key(crv, parameters, private, auto_kid)
        return cls.delegate.generate_key(crv, parameters, private, auto_kid)

    @classmethod
    def derive_key(  # type: ignore[override]
        cls, secret: Any, crv: str = "P-256", *args: Any, **kwargs: Any
    ) -> ECKey:
        if crv == CURVE:
            return SM2Key.derive_key(secret, crv, *args, **kwargs)
        return cls.delegate.derive_key(secret, crv, *args, **kwargs)


class SM2SM3Algorithm(JWSAlgModel):
    """``SM2SM3``: SM2 signature (GB/T 32918.2) with SM3, signer ID ``1234567812345678``;
    the JWS signature is ``r || s``, 64 bytes."""

    name = "SM2SM3"
    description = "SM2 digital signature with SM3 (GM/T 0003, default user ID)"
    recommended = False
    key_type = "EC"
    algorithm_security = 256

    def check_key(self, key: Any) -> None:
        super().check_key(key)
        if not isinstance(key, SM2Key):
            raise InvalidKeyCurveError(f"Key for '{self.name}' not supported, only 'SM2' allowed")

    def sign(self, msg: bytes, key: SM2Key) -> bytes:
        return key.get_op_key("sign").sign(msg)

    def verify(self, msg: bytes, sig: bytes, key: SM2Key) -> bool:
        public = key.get_op_key("verify")
        return public.verify(sig, msg)


#: The registered algorithm instance.
SM2SM3 = SM2SM3Algorithm()

_register_lock = threading.Lock()


def register_sm2() -> None:
    """Teach joserfc SM2 keys and the ``SM2SM3`` algorithm. Idempotent, thread-safe."""
    with _register_lock:
        current = JWKRegistry.key_types.get("EC", ECKey)
        if not (isinstance(current, type) and issubclass(current, SM2AwareECKey)):
            SM2AwareECKey.delegate = current  # type: ignore[assignment]
            JWKRegistry.key_types["EC"] = SM2AwareECKey
        if JWSRegistry.algorithms.get(SM2SM3.name) is not SM2SM3:
            JWSRegistry.register(SM2SM3)
        KeySet.algorithm_keys[SM2SM3.name] = [SM2SM3.key_type]


register_sm2()
