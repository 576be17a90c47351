"""The ``claims`` request parameter (OIDC Core §5.5).

A client may ask for individual claims, in the ID token or at userinfo, each either
``null`` (voluntary) or ``{"essential": bool, "value": …, "values": [...]}``. Here:

- the parameter is validated (a JSON object of those shapes; anything else is
  ``invalid_request``, not silently ignored);
- ``acr`` with ``value``/``values`` is an assurance level request like ``acr_values``
  (the level check then asks for the step-up); with ``essential: true`` an unreachable
  level is refused rather than answered with a lower ``acr`` (§5.5.1.1);
- individual claims are released under the scopes that cover them and that the person
  consented to: asking for ``id_number`` by name does not bypass the ``idcard`` scope's
  registration and consent. They appear in the ID token and at userinfo alike.
"""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError

_MEMBERS = ("userinfo", "id_token")
_MAX_LENGTH = 4096


def _bad(redirect_uri, why: str):
    return InvalidRequestError(f"Invalid 'claims' parameter: {why}.", redirect_uri=redirect_uri)


def parse_claims(value: Any, redirect_uri: str | None) -> dict[str, Any] | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        if len(value) > _MAX_LENGTH:
            raise _bad(redirect_uri, "too long")
        try:
            value = json.loads(value)
        except ValueError:
            raise _bad(redirect_uri, "not JSON") from None
    if not isinstance(value, dict) or set(value) - set(_MEMBERS):
        raise _bad(redirect_uri, "must be an object with 'userinfo' and/or 'id_token'")
    for member in value.values():
        if not isinstance(member, dict):
            raise _bad(redirect_uri, "each member must be an object")
        for name, spec in member.items():
            if spec is None:
                continue
            if not isinstance(spec, dict) or set(spec) - {"essential", "value", "values"}:
                raise _bad(redirect_uri, f"'{name}' must be null or an object")
            if not isinstance(spec.get("essential", False), bool):
                raise _bad(redirect_uri, f"'{name}.essential' must be true or false")
            if "values" in spec and not isinstance(spec["values"], list):
                raise _bad(redirect_uri, f"'{name}.values' must be an array")
    return value


def acr_request(claims: dict[str, Any] | None) -> tuple[list[str], bool]:
    """The levels asked for through ``acr`` (in the ID token's member), and whether
    essential."""
    spec = ((claims or {}).get("id_token") or {}).get("acr")
    if not isinstance(spec, dict):
        return [], False
    values = spec.get("values") or ([spec["value"]] if "value" in spec else [])
    return [v for v in values if isinstance(v, str)], bool(spec.get("essential"))


def claims_acr(claims: dict[str, Any] | None) -> str | None:
    """``acr_values`` equivalent of the ``claims`` parameter's ``acr`` request."""
    values, _essential = acr_request(claims)
    return " ".join(values) or None
