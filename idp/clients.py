"""Registering relying parties, with the checks a registration endpoint would make."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .authn.assurance import LEVELS
from .cas.services import PatternError, check_pattern
from .crypto.keys import SIGNING_ALGS
from .extensions import db
from .http_limits import storable_text
from .models import Client, hash_client_secret
from .oidc.claims import SENSITIVE_SCOPES
from .policy import CIBA, DEVICE_CODE, GRANT_TYPES, JWT_BEARER, forbidden_grants

__all__ = ["CIBA", "DEVICE_CODE", "GRANT_TYPES", "JWT_BEARER", "PROTOCOLS", "ClientError",
           "find_client", "forget_client", "register_client"]

# What a relying party speaks (``client_metadata["protocol"]``; absent means "oidc").
PROTOCOLS = ("oidc", "cas", "saml")
# The scopes a CAS or SAML client may be registered to receive (idcard: --allow-scope).
RELEASE_SCOPES = frozenset({"openid", "profile", "phone", "org", "legacy"})


class ClientError(ValueError):
    pass


_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, Client | None]] = {}


def find_client(client_id: str | None) -> Client | None:
    """The registered client, from a short per-worker cache.

    Every token, introspection, revocation and userinfo request needs its client; a
    database round trip for each was the largest cost on those endpoints. Entries are
    detached snapshots (never in a request's session, so a commit cannot expire them)
    and live a few seconds, so a registration change reaches every worker quickly."""
    # an ``iss`` claim may be anything JSON holds: a number, "\u0000", a lone surrogate
    if not client_id or not storable_text(client_id) or len(client_id) > 128:
        return None
    now = time.monotonic()
    hit = _cache.get(client_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
    if row is not None:
        db.session.expunge(row)
        if row.status != "active":
            row = None  # disabled by an operator, or a registration not yet approved
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[client_id] = (now + _CACHE_SECONDS, row)
    return row


def forget_client(client_id: str) -> None:
    _cache.pop(client_id, None)


def _check_uri(uri: str, what: str) -> None:
    parts = urlsplit(uri)
    if parts.fragment:
        raise ClientError(f"{what} must not have a fragment: {uri}")
    if parts.scheme == "https" and parts.netloc:
        return
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return  # loopback, for development and native apps (RFC 8252 §7.3)
    if parts.scheme and parts.scheme not in ("http", "https", "javascript", "data") \
            and "." in parts.scheme:
        return  # private-use scheme of a native app (RFC 8252 §7.1), e.g. cn.gov.app:/cb
    raise ClientError(f"{what} must be https (or http on loopback): {uri}")


def _fetch_json(uri: str, what: str):
    """A registration-time document a client points at (sector identifier URI): fetched
    like jwks_uri, so registering a client cannot make the server call into its own
    network (loopback and private addresses only with CLIENT_FETCH_ALLOW_PRIVATE)."""
    import json

    from flask import current_app

    from .oidc.safe_fetch import FetchError, fetch

    try:
        body = fetch(uri, timeout=5, max_bytes=64 * 1024,
                     allow_private=bool(current_app.config["CLIENT_FETCH_ALLOW_PRIVATE"]))
        return json.loads(body)
    except FetchError as exc:
        raise ClientError(f"{what} could not be fetched: {exc}: {uri}") from None
    except ValueError:
        return None


def _sector(client_id: str, subject_type: str, redirect_uris: list[str],
            sector_uri: str | None) -> str:
    """OIDC Core §8.1: the sector is the sector identifier URI's host, which must list
    every redirect URI; without one, all redirect URIs must share one host."""
    if subject_type not in ("public", "pairwise"):
        raise ClientError("subject type must be 'public' or 'pairwise'")
    if sector_uri:
        _check_uri(sector_uri, "sector identifier URI")
        listed = _fetch_json(sector_uri, "sector identifier URI")
        if not isinstance(listed, list):
            raise ClientError(f"sector identifier URI did not return a JSON array: {sector_uri}")
        missing = [u for u in redirect_uris if u not in listed]
        if missing:
            raise ClientError(f"sector identifier URI does not list: {', '.join(missing)}")
        return urlsplit(sector_uri).hostname or client_id
    hosts = {urlsplit(u).hostname or u for u in redirect_uris}
    if subject_type == "pairwise" and len(hosts) > 1:
        raise ClientError("pairwise clients with redirect URIs on several hosts need "
                          "--sector-identifier-uri")
    return hosts.pop() if len(hosts) == 1 else client_id


def _check_grants(grants: list[str], *, redirect_uris: list[str], auth_method: str,
                  channel: str, in_person_checks: bool) -> None:
    unknown = set(grants) - GRANT_TYPES
    if unknown:
        raise ClientError(f"unsupported grant type(s): {', '.join(sorted(unknown))}")
    if "authorization_code" in grants and not redirect_uris:
        raise ClientError("authorization_code clients need at least one --redirect-uri")
    if auth_method == "none" and {"client_credentials", JWT_BEARER, CIBA} & set(grants):
        raise ClientError("public clients cannot use client_credentials, jwt-bearer or CIBA")
    # A counter's word that it checked the ID card raises the account to L5 for good:
    # only service-hall CIBA clients may be trusted to give it (idp.channels.ciba).
    if in_person_checks and (channel != "hall" or CIBA not in grants):
        raise ClientError("in-person checks are only for service-hall (channel hall) "
                          "clients with the CIBA grant type")
    # The channel rule is checked here once, not only when a request arrives: a
    # registration that could never work (a website with CIBA) is refused with a reason.
    problem = forbidden_grants(channel, grants)
    if problem:
        raise ClientError(problem)


def _check_addresses(redirect_uris: list[str], post_logout_redirect_uris: list[str],
                     backchannel_logout_uri: str | None) -> None:
    for uri in redirect_uris:
        _check_uri(uri, "redirect URI")
    for uri in post_logout_redirect_uris:
        _check_uri(uri, "post-logout redirect URI")
    if backchannel_logout_uri:
        _check_uri(backchannel_logout_uri, "back-channel logout URI")


def _check_algorithms(id_token_alg: str | None, userinfo_alg: str | None) -> None:
    for what, alg in (("ID token", id_token_alg), ("userinfo", userinfo_alg)):
        if alg and alg not in SIGNING_ALGS:
            raise ClientError(f"{what} signing algorithm must be one of {', '.join(SIGNING_ALGS)}")


def _check_scopes(sensitive_scopes: list[str], org_roles: list[str] | None,
                  org_scopes: list[str] | None) -> None:
    from .orgs import BUSINESS_SCOPES, ROLE_NAMES

    if set(org_roles or []) - set(ROLE_NAMES):
        raise ClientError(f"organisation roles must be some of: {', '.join(ROLE_NAMES)}")
    if set(org_scopes or []) - set(BUSINESS_SCOPES):
        raise ClientError(f"organisation scopes must be some of: {', '.join(BUSINESS_SCOPES)}")
    bad = set(sensitive_scopes) - SENSITIVE_SCOPES
    if bad:
        raise ClientError(f"unknown sensitive scope(s): {', '.join(sorted(bad))}")


def _check_keys(auth_method: str, jwks: dict | None, jwks_uri: str | None = None) -> None:
    if auth_method != "private_key_jwt" or (jwks_uri and not jwks):
        return
    if not jwks:
        raise ClientError("private_key_jwt needs the client's public keys (--jwks)")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(f"invalid JWKS: {exc}") from None
    if any("d" in k for k in jwks.get("keys", [])):
        raise ClientError("the JWKS contains a private key; register public keys only")


def _check_security(security: dict | None, auth_method: str, grants: list[str],
                    jwks: dict | None) -> dict:
    """High-assurance metadata (FAPI profile, jwks_uri, PAR/DPoP/mTLS, JARM, CIBA ping):
    :mod:`idp.oidc.client_security`."""
    from flask import current_app

    from .oidc.client_security import SecurityMetadataError, checked

    try:
        return checked(security, auth_method=auth_method, grant_types=grants, jwks=jwks,
                       allow_private=bool(current_app.config["CLIENT_FETCH_ALLOW_PRIVATE"]))
    except SecurityMetadataError as exc:
        raise ClientError(str(exc)) from None


def _check_protocol(protocol: str, services: list[str] | None, min_level: str | None) -> None:
    if protocol not in PROTOCOLS:
        raise ClientError(f"protocol must be one of: {', '.join(PROTOCOLS)}")
    if services and protocol != "cas":
        raise ClientError("service URLs (--service) are for CAS clients (--protocol cas)")
    if protocol == "cas" and not services:
        raise ClientError("a CAS client needs at least one --service URL pattern")
    for pattern in services or []:
        try:
            check_pattern(pattern)
        except PatternError as exc:
            raise ClientError(str(exc)) from None
    if min_level and min_level not in LEVELS:
        raise ClientError(f"minimum level must be one of: {', '.join(LEVELS)}")


def _register_legacy(*, client_id: str, name: str, protocol: str, services: list[str] | None,
                     min_level: str | None, first_party: bool, sensitive_scopes: list[str],
                     channel: str, subject_type: str, org_roles: list[str] | None,
                     org_scopes: list[str] | None, legacy_systems: list[str] | None,
                     protocol_meta: dict | None, scopes: list[str] | None) -> Client:
    """A CAS or SAML relying party: no OAuth grants, secret or redirect URIs (so no OAuth
    endpoint ever serves it); what it receives follows the same scope, consent and
    sensitive-scope rules as an OIDC client's claims."""
    _check_scopes(sensitive_scopes, org_roles, org_scopes)
    if subject_type not in ("public", "pairwise"):
        raise ClientError("subject type must be 'public' or 'pairwise'")
    # No scope parameter in CAS or SAML: what the client receives is registered (consent
    # still asked); the sensitive scopes come from --allow-scope alone.
    scopes = list(dict.fromkeys(["openid", *(scopes or ["profile"])]))
    if set(scopes) - RELEASE_SCOPES:
        raise ClientError(f"a {protocol.upper()} client's scopes must be some of: "
                          f"{', '.join(sorted(RELEASE_SCOPES))} (idcard: --allow-scope)")
    meta: dict = {"protocol": protocol, "grant_types": [], "response_types": [],
                  "redirect_uris": [], "token_endpoint_auth_method": "none",
                  "scope": " ".join(scopes), "subject_type": subject_type,
                  "sector": client_id}
    if services:
        meta["cas_services"] = services
        hosts = {urlsplit(s.rstrip("*")).hostname for s in services}
        if len(hosts) == 1:
            meta["sector"] = hosts.pop()
    optional = {"min_level": min_level, "legacy_systems": legacy_systems,
                "org_roles": org_roles, "org_scopes": org_scopes}
    meta.update({k: v for k, v in optional.items() if v})
    meta.update(protocol_meta or {})
    row = Client(client_id=client_id, name=name, client_metadata=meta, channel=channel,
                 first_party=first_party, allowed_sensitive_scopes=sensitive_scopes,
                 client_secret_hash=None)
    db.session.add(row)
    db.session.commit()
    forget_client(client_id)
    return row


def register_client(*, client_id: str, name: str, secret: str | None = None,
                    auth_method: str = "client_secret_basic",
                    redirect_uris: list[str] | None = None, grant_types: list[str] | None = None,
                    post_logout_redirect_uris: list[str] | None = None,
                    backchannel_logout_uri: str | None = None,
                    first_party: bool = False, sensitive_scopes: list[str] | None = None,
                    channel: str = "web", jwks: dict | None = None,
                    id_token_alg: str | None = None,
                    subject_type: str = "public", userinfo_alg: str | None = None,
                    org_roles: list[str] | None = None, org_scopes: list[str] | None = None,
                    legacy_systems: list[str] | None = None,
                    sector_identifier_uri: str | None = None,
                    in_person_checks: bool = False, protocol: str = "oidc",
                    services: list[str] | None = None, min_level: str | None = None,
                    protocol_meta: dict | None = None, scopes: list[str] | None = None,
                    security: dict | None = None) -> Client:
    """Register a relying party. ``protocol`` "cas" takes ``services`` (URL patterns);
    "cas" and "saml" take ``min_level`` (the least assurance level a sign-in for it must
    reach), ``scopes`` (what they receive, default openid profile) and ``protocol_meta``
    (their own metadata, stored beside the rest)."""
    if not client_id or len(client_id) > 128:
        raise ClientError("client id must be 1–128 characters")
    if db.session.scalar(db.select(Client.id).where(Client.client_id == client_id)):
        raise ClientError(f"client {client_id!r} already exists")
    redirect_uris = redirect_uris or []
    post_logout_redirect_uris = post_logout_redirect_uris or []
    sensitive_scopes = sensitive_scopes or []
    _check_protocol(protocol, services, min_level)
    if protocol != "oidc":
        if secret or redirect_uris or grant_types or post_logout_redirect_uris \
                or backchannel_logout_uri or jwks or in_person_checks:
            raise ClientError(f"{protocol.upper()} clients take no OAuth settings "
                              f"(secret, redirect URIs, grant types, keys, logout URIs)")
        return _register_legacy(
            client_id=client_id, name=name, protocol=protocol, services=services,
            min_level=min_level, first_party=first_party, sensitive_scopes=sensitive_scopes,
            channel=channel, subject_type=subject_type, org_roles=org_roles,
            org_scopes=org_scopes, legacy_systems=legacy_systems, protocol_meta=protocol_meta,
            scopes=scopes)
    if min_level or protocol_meta or scopes:
        raise ClientError("OIDC clients ask for a level per request (acr_values)")
    grants = grant_types or (["client_credentials"] if not redirect_uris
                             else ["authorization_code", "refresh_token"])
    _check_grants(grants, redirect_uris=redirect_uris, auth_method=auth_method,
                  channel=channel, in_person_checks=in_person_checks)
    _check_addresses(redirect_uris, post_logout_redirect_uris, backchannel_logout_uri)
    _check_algorithms(id_token_alg, userinfo_alg)
    _check_scopes(sensitive_scopes, org_roles, org_scopes)
    security = _check_security(security, auth_method, grants, jwks)
    _check_keys(auth_method, jwks, security.get("jwks_uri"))
    meta = {
        "redirect_uris": redirect_uris,
        "grant_types": grants,
        "response_types": ["code"] if "authorization_code" in grants else [],
        "token_endpoint_auth_method": auth_method,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "scope": "openid profile phone offline_access org legacy",
        "subject_type": subject_type,
        "sector": _sector(client_id, subject_type, redirect_uris, sector_identifier_uri),
    }
    if backchannel_logout_uri:
        meta["backchannel_logout_uri"] = backchannel_logout_uri
        meta["backchannel_logout_session_required"] = True
    # Optional metadata is written only when given, so stored rows stay as before.
    optional = {"jwks": jwks, "legacy_systems": legacy_systems,
                "in_person_checks": True if in_person_checks else None,
                "org_roles": org_roles, "org_scopes": org_scopes,
                "sector_identifier_uri": sector_identifier_uri,
                "id_token_signed_response_alg": id_token_alg,
                "userinfo_signed_response_alg": userinfo_alg}
    meta.update({k: v for k, v in optional.items() if v})
    meta.update(security)
    row = Client(client_id=client_id, name=name, client_metadata=meta, channel=channel,
                 first_party=first_party, allowed_sensitive_scopes=sensitive_scopes,
                 client_secret_hash=hash_client_secret(secret) if secret else None)
    db.session.add(row)
    db.session.commit()
    forget_client(client_id)
    return row
