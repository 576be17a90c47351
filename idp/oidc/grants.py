"""Authlib grants bound to our store and models."""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    grants,
)
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from authlib.oidc.core.grants import OpenIDToken as _OpenIDToken
from flask import current_app, g

from ..authn.assurance import public_amr
from ..crypto.sm3 import half_hash_sm3
from ..extensions import db
from ..models import Person, RefreshToken
from ..orgs import valid_membership
from ..policy import issues_refresh_token
from ..revocation import revoke_grant
from ..store import store
from . import mtls, profile, resources
from .claims import legacy_claim, named_claims, user_claims
from .subject import Subject, subject_for
from .tokens import issuer, keyring, sender_binding

log = logging.getLogger(__name__)

CONFIDENTIAL_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt",
                        "tls_client_auth", "self_signed_tls_client_auth"]
ALL_METHODS = CONFIDENTIAL_METHODS + ["none"]


def check_sender_constraint(client, bound: dict | None, *, required_jkt: str | None = None,
                            bound_cnf: dict | None = None) -> None:
    """Refuse the token request unless it is sender-constrained as it must be: a client
    whose profile requires it (FAPI 2.0, dpop_bound_access_tokens, …) presents a DPoP
    proof or a certificate; a code pushed with ``dpop_jkt`` (RFC 9449 §10) or a bound
    refresh token (§5) is used only with the same key or certificate."""
    bound = bound or {}
    if profile.requires_dpop(client) and not bound.get("jkt"):
        raise InvalidRequestError("This client's tokens must be DPoP-bound: send a DPoP proof.")
    if profile.requires_mtls_binding(client) and not bound.get("x5t#S256"):
        raise InvalidRequestError("This client's tokens must be bound to its TLS certificate.")
    if profile.requires_sender_constraint(client) and not bound:
        raise InvalidRequestError(
            "This client's tokens must be sender-constrained (DPoP or mutual TLS).")
    if required_jkt and bound.get("jkt") != required_jkt:
        raise InvalidGrantError("The DPoP proof's key is not the one the request was bound to.")
    for name, value in (bound_cnf or {}).items():
        if bound.get(name) != value:
            raise InvalidGrantError("The refresh token is bound to another key or certificate.")


def _resource_values(payload) -> list:
    """Every ``resource`` of an authorization request (repeatable, RFC 8707 §2): from the
    query, or a list in pushed / request-object parameters."""
    value = payload.data.get("resource")
    if isinstance(value, list):
        return value
    many = payload.datalist.get("resource") if hasattr(payload, "datalist") else None
    return list(many) if many else ([value] if value else [])


class StoredCode(AuthorizationCodeMixin):
    """An authorization code as kept in the short-lived store."""

    def __init__(self, code: str, data: dict[str, Any]):
        self.code = code
        self.data = data
        self.code_challenge = data.get("code_challenge")
        self.code_challenge_method = data.get("code_challenge_method")

    def get_redirect_uri(self):
        return self.data.get("redirect_uri")

    def get_scope(self):
        return self.data.get("scope", "")

    def get_nonce(self):
        return self.data.get("nonce")

    def get_auth_time(self):
        return self.data.get("auth_time")

    def get_acr(self):
        return self.data.get("acr")

    def get_amr(self):
        # Authlib copies this into the ID token as is: leave out internal markers.
        return public_amr(self.data.get("amr") or [])


def active_person(person_id: str) -> Person | None:
    person = db.session.get(Person, person_id)
    return person if person is not None and person.status == "active" else None


class PolicyTokenResponse:
    """The token response of the device, CIBA and kiosk grants (Authlib's
    ``create_token_response``, once): the policy, not each grant, says whether a refresh
    token goes with it. A grant says which scope the tokens carry, and may say where the
    sign-in happened and do its own work just before tokens are made."""

    def token_scope(self) -> str:
        raise NotImplementedError

    def sign_in_channel(self) -> str | None:
        return None

    def before_tokens(self) -> None:
        """Called once the request is valid, just before the tokens are generated."""

    @hooked
    def create_token_response(self):
        self.before_tokens()
        client, scope = self.request.client, self.token_scope()
        refresh = issues_refresh_token(client, self.GRANT_TYPE, scope, self.sign_in_channel())
        token = self.generate_token(user=self.request.user, scope=scope,
                                    include_refresh_token=refresh)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                       include_refresh_token=True):
        # Authlib's token response stays; whether it has a refresh token is the policy's.
        include = include_refresh_token and issues_refresh_token(
            self.request.client, self.GRANT_TYPE, scope)
        return super().generate_token(user=user, scope=scope, grant_type=grant_type,
                                      expires_in=expires_in, include_refresh_token=include)

    def validate_token_request(self):
        super().validate_token_request()
        code: StoredCode = self.request.authorization_code
        check_sender_constraint(self.request.client, sender_binding(),
                                required_jkt=code.data.get("dpop_jkt"))
        resources.set_audience(resources.narrowed(resources.from_request(),
                                                  code.data.get("resource")))

    def validate_authorization_request(self):
        redirect_uri = super().validate_authorization_request()
        client = self.request.client
        if profile.is_fapi(client) and not self.request.payload.data.get("code_challenge"):
            raise InvalidRequestError("FAPI 2.0 requires PKCE ('code_challenge' with S256).",
                                      redirect_uri=redirect_uri)
        resources.requested(_resource_values(self.request.payload), redirect_uri)
        # PKCE is required of public clients (RFC 9700 §2.1.1), at the authorization
        # request already, so a code without a challenge is never issued to them.
        if self.request.client.is_public and not self.request.payload.data.get("code_challenge"):
            raise InvalidRequestError(
                "Public clients must use PKCE ('code_challenge' with S256).",
                redirect_uri=redirect_uri,
            )
        return redirect_uri

    def save_authorization_code(self, code, request):
        ctx = g.idp_auth_context  # set by the authorization view from the SSO session
        data = request.payload.data
        record = {
            "client_id": request.client.get_client_id(),
            "redirect_uri": request.payload.redirect_uri,
            "scope": request.client.get_allowed_scope(request.payload.scope),
            "person_id": request.user.id,
            "nonce": data.get("nonce"),
            "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method"),
            "auth_time": ctx["auth_time"],
            "acr": ctx.get("acr"),
            "amr": ctx.get("amr", []),
            "sid": ctx.get("sid"),
            "acr_values": data.get("acr_values"),
            "membership_id": ctx.get("membership_id"),
            "channel": ctx.get("channel"),
            "act": ctx.get("act"),
            "gid": secrets.token_hex(16),
            "dpop_jkt": data.get("dpop_jkt"),
            "resource": resources.requested(_resource_values(request.payload)) or None,
            "claims": ctx.get("claims"),
        }
        store().set(f"code:{code}", record, profile.code_ttl(request.client))

    def query_authorization_code(self, code, client):
        record = store().take(f"code:{code}")
        if record is None:
            used = store().get(f"code_used:{code}")
            if used is not None:
                # RFC 6749 §4.1.2: a code used twice revokes what it issued.
                n = revoke_grant(used["gid"], reason="authorization code replayed")
                log.warning("authorization code replayed by client %s; revoked %d tokens",
                            client.get_client_id(), n)
            return None
        # Remember the spent code for as long as its tokens could be alive.
        store().set(f"code_used:{code}", {"gid": record["gid"]},
                    current_app.config["ACCESS_TOKEN_TTL"] + 60)
        if record["client_id"] != client.get_client_id():
            return None
        return StoredCode(code, record)

    def delete_authorization_code(self, authorization_code):
        pass  # already taken atomically in query_authorization_code

    def authenticate_user(self, authorization_code: StoredCode):
        d = authorization_code.data
        person = active_person(d["person_id"])
        if person is None:
            return None
        if d.get("membership_id") and valid_membership(d["membership_id"]) is None:
            return None  # the appointment ended between sign-in and code exchange
        return Subject(person=person, auth_time=d["auth_time"], gid=d["gid"],
                       sub=subject_for(self.request.client, person.id),
                       acr=d.get("acr"), amr=d.get("amr") or [], sid=d.get("sid"),
                       membership_id=d.get("membership_id"), channel=d.get("channel"),
                       act=d.get("act"), claims=d.get("claims"))


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = db.session.scalar(
            db.select(RefreshToken).where(
                RefreshToken.token_hash == RefreshToken.digest(refresh_token)
            )
        )
        if row is None or row.revoked_at is not None or row.is_expired():
            return None
        if row.membership_id and valid_membership(row.membership_id) is None:
            return None  # acting for an organisation ends with the appointment
        if row.rotated_at is not None:
            # Reuse of a rotated token: someone holds a copy. Revoke the family.
            n = revoke_grant(row.family_id, reason="refresh token reused")
            log.warning("refresh token reuse detected for client %s; revoked %d tokens",
                        row.client_id, n)
            return None
        return row

    def authenticate_user(self, refresh_token: RefreshToken):
        person = active_person(refresh_token.person_id)
        if person is None:
            return None
        # Rotate before anything is issued, in one conditional UPDATE: of two requests
        # racing with the same token (the client and a thief) only one gets tokens, and
        # the other is reuse like any later one — the family is revoked. It commits on
        # its own connection: a session commit would expire the token and the person,
        # and reading them back would cost two more queries.
        with db.engine.begin() as conn:
            claimed = conn.execute(
                db.update(RefreshToken)
                .where(RefreshToken.id == refresh_token.id, RefreshToken.rotated_at.is_(None),
                       RefreshToken.revoked_at.is_(None))
                .values(rotated_at=time.time())
            ).rowcount
        if claimed != 1:
            n = revoke_grant(refresh_token.family_id, reason="refresh token reused")
            log.warning("concurrent refresh token use for client %s; revoked %d tokens",
                        refresh_token.client_id, n)
            raise InvalidGrantError("The refresh token has already been used.")
        return Subject(person=person, auth_time=refresh_token.auth_time,
                       gid=refresh_token.family_id, sub=subject_for(self.request.client, person.id),
                       acr=refresh_token.acr,
                       amr=refresh_token.amr or [], sid=refresh_token.sid,
                       membership_id=refresh_token.membership_id,
                       channel=refresh_token.channel, act=refresh_token.act,
                       claims=refresh_token.claims)

    def validate_token_request(self):
        super().validate_token_request()
        row: RefreshToken = self.request.refresh_token
        check_sender_constraint(self.request.client, sender_binding(), bound_cnf=row.cnf)
        resources.set_audience(resources.narrowed(resources.from_request(), row.resource))

    def revoke_old_credential(self, refresh_token: RefreshToken):
        pass  # already rotated atomically in authenticate_user


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self):
        super().validate_token_request()
        check_sender_constraint(self.request.client, sender_binding())
        resources.set_audience(resources.from_request())


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only: ``plain`` protects nothing against a stolen request."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.",
                                      redirect_uri=redirect_uri)


class _IDTokenMixin:
    """ID-token signing and claims shared by the code and refresh grants."""

    def get_client_algorithm(self, client):
        return client.id_token_signed_response_alg or current_app.config["DEFAULT_ID_TOKEN_ALG"]

    def resolve_client_private_key(self, client):
        return keyring().signing_key(self.get_client_algorithm(client))[1]

    def get_encode_header(self, client):
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": keyring().signing_key(alg)[0]}

    def get_client_claims(self, client):
        return {
            "iss": issuer(),
            "aud": [client.get_client_id()],
            "exp": int(time.time()) + current_app.config["ID_TOKEN_TTL"],
        }

    def process_token(self, grant, response):
        # Keep the token response at hand for at_hash (see get_compatible_claims).
        grant.request.idp_token = response[1]
        return super().process_token(grant, response)

    def get_compatible_claims(self, request):
        claims = super().get_compatible_claims(request)
        token = getattr(request, "idp_token", None) or {}
        if self.get_client_algorithm(request.client) == "SM2SM3" and token.get("access_token"):
            # Authlib derives at_hash from the JWS alg's SHA-2 and knows no SM3; for
            # SM2SM3 it is the left half of the access token's SM3 hash.
            claims["at_hash"] = half_hash_sm3(token["access_token"])
        user: Subject = request.user
        claims.update(user.authentication_claims(with_sid=True))
        scope = (getattr(request, "idp_token", None) or {}).get("scope", "")
        if "legacy" in scope.split():
            claims["legacy_accounts"] = legacy_claim(user.person.id, request.client)
        # Claims asked for by name in the ``id_token`` member (OIDC Core §5.5).
        named = named_claims(user.person, (user.claims or {}).get("id_token"), user.sub,
                             request.client)
        claims.update({k: v for k, v in named.items() if k not in claims})
        return claims

    def generate_user_info(self, user: Subject, scope):
        return user_claims(user.person, scope, user.sub)


class OpenIDCode(_IDTokenMixin, _OpenIDCode):
    def exists_nonce(self, nonce, request):
        # Nonce replay is the relying party's check (it binds the nonce to its own
        # session). Checking here would refuse our own resumption of a request
        # after the login page, which validates the same request twice.
        return False


class OpenIDToken(_IDTokenMixin, _OpenIDToken):
    """The ID token of every grant without an authorization code: refresh (OIDC Core
    §12.2: same sid and auth_time as the first), device code, CIBA and the kiosk
    assertion (no nonce; no sid where there is no browser session)."""


def _number(value: Any) -> bool:
    # bool is an int in Python, and JSON may carry NaN or Infinity: neither is a time.
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def assertion_lifetime_problem(claims: dict[str, Any], max_lifetime: float,
                               leeway: float) -> str | None:
    """Why a signed assertion lives too long, or None. A JWT whose ``exp`` is decades
    ahead is a credential that never expires: whoever copies it (a log, a proxy) can
    replay it until its ``jti`` is forgotten, and its ``jti`` must be kept that long.
    So ``exp`` may be at most ``max_lifetime`` seconds after ``iat`` (when given) and
    after now."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _number(exp) or (iat is not None and not _number(iat)):
        return "'exp' and 'iat' must be numbers."
    if iat is not None and exp - iat > max_lifetime:
        return f"The assertion may live at most {int(max_lifetime)} seconds (exp - iat)."
    if exp - time.time() > max_lifetime + leeway:
        return f"The assertion's 'exp' is more than {int(max_lifetime)} seconds ahead."
    return None


class PrivateKeyJWT(JWTBearerClientAssertion):
    """``private_key_jwt`` (OIDC Core §9, RFC 7523 §2.2) with ``jti`` replay protection
    and a capped lifetime (CLIENT_ASSERTION_MAX_LIFETIME)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def verify_claims(self, claims):
        # Before Authlib's checks, which store the jti for as long as the assertion lives.
        problem = assertion_lifetime_problem(
            claims, current_app.config["CLIENT_ASSERTION_MAX_LIFETIME"], self.leeway)
        if problem:
            raise InvalidClientError(description=problem)
        super().verify_claims(claims)

    def get_audiences(self):
        base = issuer()
        paths = ["/token", "/introspect", "/revoke", "/bc-authorize", "/par"]
        # CIBA §7.1: the backchannel authentication endpoint's URL is an audience too;
        # so are the mutual-TLS aliases of the endpoints (RFC 8705 §5).
        alias = mtls.alias_base()
        return [base, *(base + p for p in paths), *(alias + p for p in paths if alias)]

    def validate_jti(self, claims, jti):
        ttl = max(60, int(claims.get("exp", 0)) - int(time.time()) + self.leeway)
        return store().add(f"cajti:{claims['sub']}:{jti}", 1, ttl)

    def resolve_client_public_key(self, client):
        from .client_keys import ClientKeysError, key_set

        try:
            return key_set(client, _assertion_kid())
        except ClientKeysError as exc:
            raise InvalidClientError(description=f"The client's keys: {exc}") from None


def _assertion_kid() -> str | None:
    """The ``kid`` of the request's client assertion: a key set fetched by reference is
    fetched again when it does not have it (the client rotated its keys)."""
    from flask import request as http_request
    from joserfc import jws

    raw = http_request.form.get("client_assertion") or ""
    try:
        kid = jws.extract_compact(raw.encode()).protected.get("kid")
    except Exception:  # noqa: BLE001 - Authlib reports the malformed assertion itself
        return None
    return kid if isinstance(kid, str) else None
