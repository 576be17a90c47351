"""The ``claims`` request parameter (OIDC Core §5.5).

A client may ask for individual claims, in the ID token or at userinfo, each either
``null`` (voluntary) or ``{"essential": bool, "value": …, "values": [...]}``. Here:

- the parameter is validated (a JSON object of those shapes; anything else is
  ``invalid_request``, not silently ignored);
- ``acr`` with ``value``/``values`` is an assurance level request like ``acr_values``
  (the level check then asks for the step-up); with ``essential: true`` an unreachable
  level is refused rather than answered with a lower ``acr`` (§5.5.1.1);
- an individual claim (a member of ``userinfo`` or ``id_token``) is released when the
  client is allowed the scope that covers it (:data:`idp.oidc.claims.CLAIM_SCOPES`: its
  registration; ``id_number`` needs the ``idcard`` registration like the scope does) and
  the person consented to it: covered by a scope of the request they consent to, or
  listed by name on the consent page beside the scopes (where each can be declined),
  or remembered from an earlier consent to this client. It appears where it was asked
  for: the ``id_token`` member's in the ID token, the ``userinfo`` member's at userinfo.
  What the scopes release is unchanged.
- ``essential`` changes nothing of that (§5.5: an essential claim that is not released
  is not an error): a claim the client may not have, the person declined, or we do not
  know, is simply absent, and the relying party decides what to do without it.
  ``value``/``values`` of a released claim do not change what it is: the person's own.
- ``sub`` with a ``value`` in the ``id_token`` member names whom the client expects:
  anyone else signed in gets ``login_required``, never tokens (§5.5.1).
"""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError

from .claims import CLAIM_SCOPES

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


def _asked(claims: dict[str, Any] | None) -> dict[str, list[str]]:
    """The claims asked for by name that we can release, per member."""
    return {m: sorted(n for n in (claims or {}).get(m) or {} if n in CLAIM_SCOPES)
            for m in _MEMBERS}


def _allowed(client, name: str) -> bool:
    scope = CLAIM_SCOPES[name]
    return client is not None and scope in client.get_allowed_scope(scope).split()


def to_consent(claims: dict[str, Any] | None, client, scope: str) -> list[str]:
    """The claims the consent page lists by name: asked for, allowed to the client, and
    not already covered by a scope of the request (``scope``, the allowed one)."""
    if not claims:
        return []
    granted_scopes = set((scope or "").split())
    names = {n for ns in _asked(claims).values() for n in ns}
    return sorted(n for n in names if _allowed(client, n) and CLAIM_SCOPES[n] not in granted_scopes)


def consented(names, scopes: str, remembered: str) -> bool:
    """Whether an earlier consent (its scopes and claims) covers ``names``."""
    scopes_ok, claims_ok = set((scopes or "").split()), set((remembered or "").split())
    return all(n in claims_ok or CLAIM_SCOPES.get(n) in scopes_ok for n in names)


def released(claims: dict[str, Any] | None, client, scope: str,
             declined=()) -> dict[str, list[str]] | None:
    """What is released by name, per member, once consent is settled: the claims the
    client is allowed, less those the person declined on the consent page (only the
    ones listed there by name can be declined). None when nothing is."""
    if not claims:
        return None
    offered = set(to_consent(claims, client, scope))
    no = {n for n in declined or () if n in offered}
    out = {m: [n for n in ns if _allowed(client, n) and n not in no]
           for m, ns in _asked(claims).items()}
    out = {m: ns for m, ns in out.items() if ns}
    return out or None


def essential_claims(claims: dict[str, Any] | None) -> set[str]:
    """Names marked ``essential`` in either member (shown as such on the consent page)."""
    return {n for m in _MEMBERS for n, spec in ((claims or {}).get(m) or {}).items()
            if isinstance(spec, dict) and spec.get("essential") is True}


def requested_sub(claims: dict[str, Any] | None) -> str | None:
    """The subject the ``id_token`` member's ``sub`` asks for by value, if any."""
    spec = ((claims or {}).get("id_token") or {}).get("sub")
    value = spec.get("value") if isinstance(spec, dict) else None
    return value if isinstance(value, str) else None
