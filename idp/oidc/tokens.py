"""Access tokens (RFC 9068 JWTs) and refresh tokens."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, has_request_context, request
from joserfc import jwt
from joserfc.errors import JoseError

from .. import audit
from ..extensions import db
from ..models import RefreshToken
from ..orgs import valid_membership
from ..revocation import person_client_grants_key, person_grants_key
from ..store import store
from .subject import Subject

ACCESS_TOKEN_TYP = "at+jwt"


PID_CONTEXT = "access-token.person"


def keyring():
    return current_app.extensions["idp.keys"]


def fieldcrypto():
    return current_app.extensions["idp.fieldcrypto"]


def person_id_of(claims: dict[str, Any]) -> str | None:
    """The internal person id behind a verified access token's subject."""
    sealed = claims.get("idp_pid")
    if sealed is None:
        return claims.get("sub")
    try:
        return fieldcrypto().decrypt(sealed, PID_CONTEXT)
    except ValueError:
        return None


def issuer() -> str:
    return current_app.config["ISSUER"]


def resource_audience() -> str:
    """The default resource indicator for access tokens: this provider's own APIs."""
    return issuer()


def sign(claims: dict[str, Any], alg: str, typ: str | None = None) -> str:
    kid, key = keyring().signing_key(alg)
    header = {"alg": alg, "kid": kid}
    if typ:
        header["typ"] = typ
    return jwt.encode(header, claims, key, algorithms=[alg])


def sender_binding() -> dict[str, str] | None:
    """The ``cnf`` of the tokens this token request issues (RFC 9449 §6, RFC 8705 §3):
    set by the token view from the request's DPoP proof or TLS certificate (in the
    request's environ, not ``g``: that lives as long as the app context)."""
    return (request.environ.get("idp.cnf") if has_request_context() else None) or None


def token_type() -> str:
    return "DPoP" if (sender_binding() or {}).get("jkt") else "Bearer"


def generate_access_token(client, grant_type, user: Subject | None, scope: str) -> str:
    now = int(time.time())
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "iss": issuer(),
        "aud": (request.environ.get("idp.audience") if has_request_context() else None)
        or resource_audience(),
        "client_id": client.get_client_id(),
        "iat": now,
        "exp": now + current_app.config["ACCESS_TOKEN_TTL"],
        "jti": jti,
        "scope": scope or "",
    }
    cnf = sender_binding()
    if cnf:
        claims["cnf"] = cnf
    if user is not None:
        claims["sub"] = user.sub
        if user.sub != user.person.id:
            # Pairwise: the resource server (userinfo) must find the person without
            # the token revealing a join key; an SM4-GCM sealed id is opaque and
            # different in every token.
            claims["idp_pid"] = fieldcrypto().encrypt(user.person.id, PID_CONTEXT)
        claims.update(user.authentication_claims(with_sid=False))
        if user.membership_id:
            claims["idp_mid"] = user.membership_id
        if (user.claims or {}).get("userinfo"):
            # Claim names only (OIDC ``claims`` parameter): what userinfo releases by name.
            claims["idp_claims"] = user.claims["userinfo"]
    else:
        claims["sub"] = client.get_client_id()
    g.idp_issued_jti = jti
    return sign(claims, current_app.config["ACCESS_TOKEN_ALG"], typ=ACCESS_TOKEN_TYP)


def generate_refresh_token(client, grant_type, user, scope) -> str:
    return secrets.token_urlsafe(32)


def expires_in(client, grant_type) -> int:
    return current_app.config["ACCESS_TOKEN_TTL"]


def save_token(token: dict, request) -> None:
    """Record what was issued: the refresh token row, and the access token's jti under
    its grant so that revoking the grant reaches the access token too."""
    user: Subject | None = request.user
    cfg = current_app.config
    jti = g.pop("idp_issued_jti", None)
    client_id = request.client.get_client_id()
    if user is None:
        audit.record("token.issued", actor=client_id, client_id=client_id,
                     details={"grant_type": request.payload.grant_type, "jti": jti,
                              "scope": token.get("scope", "")})
        return
    if jti:
        ttl = cfg["ACCESS_TOKEN_TTL"] + 60
        store().append_many([
            (f"gjti:{user.gid}", jti, ttl),
            # Grants whose access tokens may still be live, per person, so that ending
            # everything of an account (reset, lock, closure) reaches tokens without a
            # refresh token row too (idp.revocation.revoke_person).
            (person_grants_key(user.person.id), user.gid, ttl),
            # The same per person and client, so "revoke this application" on the
            # account page reaches its access tokens without a refresh token too.
            (person_client_grants_key(user.person.id, client_id), user.gid, ttl),
        ])
    if token.get("refresh_token"):
        now = time.time()
        db.session.add(
            RefreshToken(
                token_hash=RefreshToken.digest(token["refresh_token"]),
                family_id=user.gid,
                client_id=request.client.get_client_id(),
                person_id=user.person.id,
                scope=token.get("scope", ""),
                auth_time=user.auth_time,
                acr=user.acr,
                amr=user.amr,
                sid=user.sid,
                membership_id=user.membership_id,
                channel=user.channel,
                act=user.act,
                cnf=sender_binding(),
                resource=_resources(),
                claims=user.claims,
                issued_at=now,
                expires_at=now + cfg["REFRESH_TOKEN_TTL"],
            )
        )
        _commit_keeping_loaded()
    details = {"grant_type": request.payload.grant_type, "jti": jti, "gid": user.gid,
               "scope": token.get("scope", ""), "refresh_token": bool(token.get("refresh_token")),
               "acr": user.acr, "channel": user.channel,
               "bound": sorted(sender_binding() or {})}
    if user.act:
        details["act"] = user.act  # the clerk or agent, recorded next to the person
    audit.record("token.issued", actor=(user.act or {}).get("sub", client_id),
                 subject=user.person.id, client_id=client_id, details=details)


def _commit_keeping_loaded() -> None:
    """Commit without expiring what the session holds: the ID token and the audit entry
    made right after read the person (and its decrypted name) again, which after a plain
    commit would cost a SELECT and a decryption per token request. Only this request's
    own rows are in the session, read moments ago; nothing is read back from the new row."""
    session = db.session()
    before = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = before


def _resources() -> list[str] | None:
    """The resource indicators the grant was limited to (RFC 8707), for refreshes."""
    aud = request.environ.get("idp.audience") if has_request_context() else None
    if not aud:
        return None
    return aud if isinstance(aud, list) else [aud]


class InvalidAccessToken(Exception):
    pass


@dataclass
class AccessToken:
    """A verified access token, shaped for Authlib's revocation/introspection endpoints."""

    claims: dict[str, Any]

    def check_client(self, client) -> bool:
        return self.claims.get("client_id") == client.get_client_id()

    def get_scope(self) -> str:
        return self.claims.get("scope", "")

    def get_expires_in(self) -> int:
        return int(self.claims["exp"] - self.claims["iat"])

    def is_expired(self) -> bool:
        return time.time() >= self.claims["exp"]

    def is_revoked(self) -> bool:
        if store().get(f"revoked:{self.claims['jti']}") is not None:
            return True
        mid = self.claims.get("idp_mid")
        if mid:
            # Acting for an organisation: valid only while the appointment is.
            return valid_membership(mid) is None
        return False


def decode_access_token(token: str, *, audience: str | None = None) -> AccessToken:
    """Verify signature, type, issuer, expiry and audience; revocation is the caller's check
    (introspection must still parse a revoked token to say it is inactive)."""
    try:
        decoded = jwt.decode(token, keyring().public_keys(), algorithms=keyring().algorithms())
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidAccessToken("signature or format") from exc
    if decoded.header.get("typ", "").lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
        raise InvalidAccessToken("not an access token")
    claims = decoded.claims
    if claims.get("iss") != issuer():
        raise InvalidAccessToken("issuer")
    if not isinstance(claims.get("exp"), int) or not claims.get("jti"):
        raise InvalidAccessToken("claims")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if audience is not None and audience not in auds:
        raise InvalidAccessToken("audience")
    return AccessToken(claims)


def revoke_access_token(claims: dict[str, Any]) -> None:
    ttl = max(1, claims["exp"] - int(time.time()) + 1)
    store().set(f"revoked:{claims['jti']}", 1, ttl)
    audit.record("token.revoked", actor=claims.get("client_id", "system"),
                 client_id=claims.get("client_id"), details={"jti": claims["jti"]})

