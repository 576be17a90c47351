"""How the authorization response travels: the response modes (OAuth 2.0 Multiple
Response Type Encoding Practices, Form Post Response Mode, and JARM as FAPI uses it).

- ``query`` (the code flow's default): the parameters in the redirect URI's query.
- ``form_post``: a page whose form POSTs the parameters to the redirect URI, submitted
  by a script as soon as it loads; without scripts the person presses the button shown
  in ``<noscript>``. The page's CSP lets its form go to the redirect URI's origin only.
- ``jwt``, ``query.jwt``, ``fragment.jwt``, ``form_post.jwt`` (JARM): the parameters
  (``code``, ``state``, ``iss`` — or ``error`` …) travel as one JWT signed by us in the
  ``response`` parameter: ``iss`` is this provider, ``aud`` the client, ``exp`` a short
  time ahead. The client can then tell that the response really came from us and was
  meant for it, and nothing in it was changed on the way. ``jwt`` means ``query.jwt``
  for the code flow (JARM §2.3.4). The algorithm is the client's
  ``authorization_signed_response_alg``, else the provider's default ID-token algorithm.

A registered redirect URI may have a query of its own: it stays in the URI (and in the
form's action), and only our parameters are moved.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import current_app, redirect, render_template

from .tokens import issuer, keyring, sign

MODES = ["jwt", "query.jwt", "fragment.jwt", "form_post.jwt"]
PLAIN_MODES = ["query", "form_post"]


def check_mode(mode, redirect_uri: str | None) -> None:
    if mode in (None, "", *PLAIN_MODES, *MODES):
        return
    # Answering in another mode than the one asked would put the code where the client
    # does not look (OAuth 2.0 Multiple Response Type Encoding Practices §2.1).
    raise InvalidRequestError(
        "response_mode must be one of: " + ", ".join(PLAIN_MODES + MODES) + ".",
        redirect_uri=redirect_uri)


def wanted(mode) -> bool:
    return mode in MODES or mode == "form_post"


def algorithm(client) -> str:
    alg = client.meta("authorization_signed_response_alg") if client else None
    return alg if alg in keyring().algorithms() else current_app.config["DEFAULT_ID_TOKEN_ALG"]


def _ours(location: str, redirect_uri: str | None) -> tuple[str, list[tuple[str, str]]] | None:
    """Split a redirect to the client into (its redirect URI, our parameters); None when
    ``location`` is not a redirect to ``redirect_uri`` (e.g. to our own sign-in page)."""
    if not redirect_uri:
        return None
    parts, registered = urlsplit(location), urlsplit(redirect_uri)
    if (parts.scheme, parts.netloc, parts.path) != (
            registered.scheme, registered.netloc, registered.path):
        return None
    own = parse_qsl(registered.query, keep_blank_values=True)
    params = parse_qsl(parts.query, keep_blank_values=True)
    for pair in own:  # the registered URI's own query is not part of our response
        if pair in params:
            params.remove(pair)
    return redirect_uri, params


def form_post(action: str, fields: list[tuple[str, str]], client):
    """The Form Post Response Mode page: ``fields`` POSTed to ``action``."""
    resp = current_app.make_response(render_template(
        "form_post.html", action=action, fields=fields,
        client_name=(client.name or client.client_id) if client else ""))
    target = urlsplit(action)
    # Only this form may leave the page, and only to the client's redirect URI's origin.
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        f"form-action {target.scheme}://{target.netloc}")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def wrap(resp, mode: str, client, redirect_uri: str | None):
    """The authorization response ``resp`` (a redirect to the client carrying the
    response in its query) in response mode ``mode``; anything else as it is."""
    location = resp.headers.get("Location")
    if resp.status_code not in (302, 303) or not location:
        return resp
    split = _ours(location, redirect_uri)
    if split is None:
        return resp
    base, params = split
    if mode in MODES:
        claims = {**dict(params), "iss": issuer(), "aud": client.client_id,
                  "exp": int(time.time()) + int(current_app.config["JARM_RESPONSE_TTL"])}
        params = [("response", sign(claims, algorithm(client)))]
    if mode in ("form_post", "form_post.jwt"):
        return form_post(base, params, client)
    if mode == "fragment.jwt":
        return redirect(base + "#" + urlencode(params))
    parts = urlsplit(base)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return redirect(urlunsplit(parts._replace(query=query)))
