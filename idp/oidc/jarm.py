"""Signed authorization responses (JARM: OAuth 2.0 JWT Secured Authorization Response
Mode, as FAPI uses it).

With ``response_mode`` ``jwt``, ``query.jwt`` or ``fragment.jwt`` the parameters of the
authorization response (``code``, ``state``, ``iss`` — or ``error`` …) travel as one JWT
signed by us in the ``response`` parameter: ``iss`` is this provider, ``aud`` the
client, ``exp`` a short time ahead. The client can then tell that the response really
came from us and was meant for it, and nothing in it was changed on the way. ``jwt``
means ``query.jwt`` for the code flow (JARM §2.3.4). The algorithm is the client's
``authorization_signed_response_alg``, else the provider's default ID-token algorithm.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import current_app, redirect

from .tokens import issuer, keyring, sign

MODES = ["jwt", "query.jwt", "fragment.jwt"]
PLAIN_MODES = ["query"]


def check_mode(mode, redirect_uri: str | None) -> None:
    if mode in (None, "", *PLAIN_MODES, *MODES):
        return
    # Answering in another mode than the one asked would put the code where the client
    # does not look (OAuth 2.0 Multiple Response Type Encoding Practices §2.1).
    raise InvalidRequestError(
        "response_mode must be one of: " + ", ".join(PLAIN_MODES + MODES) + ".",
        redirect_uri=redirect_uri)


def wanted(mode) -> bool:
    return mode in MODES


def algorithm(client) -> str:
    alg = client.meta("authorization_signed_response_alg") if client else None
    return alg if alg in keyring().algorithms() else current_app.config["DEFAULT_ID_TOKEN_ALG"]


def wrap(resp, mode: str, client):
    """Rewrite a redirect carrying the response in its query as a JARM response."""
    location = resp.headers.get("Location")
    if resp.status_code not in (302, 303) or not location:
        return resp
    parts = urlsplit(location)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    claims = {**params, "iss": issuer(), "aud": client.client_id,
              "exp": int(time.time()) + int(current_app.config["JARM_RESPONSE_TTL"])}
    token = sign(claims, algorithm(client))
    # The redirect URI's own query (registered with it) is kept; ours is replaced.
    base = location.split("?", 1)[0]
    if mode == "fragment.jwt":
        return redirect(base + "#" + urlencode({"response": token}))
    return redirect(urlunsplit(parts._replace(query=urlencode({"response": token}))))
