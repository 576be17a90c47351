"""``idp client add``."""

from __future__ import annotations

import json
import secrets

import click

from .. import audit
from ..saml.cli import saml_options
from .common import app_context, emit, fail, operator


@click.group()
def client() -> None:
    """Relying parties."""


@client.command("add")
@saml_options
@click.option("--client-id", required=True)
@click.option("--name", default=None)
@click.option("--secret", default=None, help="Client secret (generated when omitted).")
@click.option("--public", is_flag=True, help="Public client: no secret, PKCE required.")
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--grant-type", "grant_types", multiple=True,
              help="authorization_code, refresh_token, client_credentials, device_code, "
                   "jwt-bearer or ciba (or the grant type's URN); repeatable. Which ones "
                   "a client may have depends on --channel.")
@click.option("--auth-method", default=None,
              type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt",
                                 "tls_client_auth", "self_signed_tls_client_auth", "none"]))
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
@click.option("--backchannel-logout-uri", default=None)
@click.option("--first-party", is_flag=True, help="Skip the consent page.")
@click.option("--allow-scope", "allow_scopes", multiple=True, help="Sensitive scope, e.g. idcard.")
@click.option("--channel", default="web",
              type=click.Choice(["web", "app", "kiosk", "hall", "hotline"]))
@click.option("--jwks", "jwks_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="JSON Web Key Set file with the client's public keys (private_key_jwt).")
@click.option("--id-token-alg", default=None, help="ES256 (default), RS256 or SM2SM3")
@click.option("--userinfo-alg", default=None, help="Sign userinfo responses (JWT) with this alg")
@click.option("--org-role", "org_roles", multiple=True,
              type=click.Choice(["legal_rep", "admin", "agent"]),
              help="Enterprise tokens for this client need one of these roles (repeatable).")
@click.option("--org-scope", "org_scopes", multiple=True,
              help="Enterprise tokens for this client need these business scopes (repeatable).")
@click.option("--legacy-system", "legacy_systems", multiple=True,
              help="Legacy system whose ids this client may receive (scope legacy; repeatable).")
@click.option("--subject-type", default="public", type=click.Choice(["public", "pairwise"]))
@click.option("--sector-identifier-uri", default=None)
@click.option("--in-person-checks", is_flag=True,
              help="Service-hall counter (--channel hall, CIBA) that may vouch for an ID card "
                   "checked in person (in_person_check=document, L5).")
@click.option("--protocol", default="oidc", type=click.Choice(["oidc", "cas", "saml"]),
              help="What the relying party speaks (CAS: --service; SAML: --metadata).")
@click.option("--service", "services", multiple=True,
              help="CAS service URL, exact or ending in '*' for a path prefix (repeatable).")
@click.option("--min-level", default=None, type=click.Choice(["L1", "L2", "L3", "L4", "L5"]),
              help="CAS/SAML: the least assurance level a sign-in for this client reaches.")
@click.option("--scope", "release_scopes", multiple=True,
              type=click.Choice(["profile", "phone", "org", "legacy"]),
              help="CAS/SAML: what the client receives (default profile; repeatable).")
@click.option("--profile", default=None, type=click.Choice(["fapi2"]),
              help="FAPI 2.0: PAR, PKCE S256, private_key_jwt or mTLS, sender-constrained "
                   "tokens, 60-second codes.")
@click.option("--jwks-uri", default=None, help="Where the client publishes its public keys.")
@click.option("--require-par", is_flag=True, help="Authorization requests must be pushed.")
@click.option("--require-signed-request", is_flag=True,
              help="Authorization requests must be signed request objects (RFC 9101).")
@click.option("--dpop-bound", is_flag=True, help="Every access token must be DPoP-bound.")
@click.option("--mtls-bound", is_flag=True,
              help="Every access token must be bound to the client's TLS certificate.")
@click.option("--tls-subject-dn", default=None,
              help="tls_client_auth: the certificate's subject DN (RFC 4514).")
@click.option("--jarm-alg", default=None, help="Signed authorization responses' algorithm.")
@click.option("--ciba-mode", default=None, type=click.Choice(["poll", "ping"]))
@click.option("--ciba-notification-endpoint", default=None,
              help="CIBA ping mode: the client's notification endpoint.")
@click.option("--json", "as_json", is_flag=True)
def client_add(client_id, name, secret, public, redirect_uris, grant_types, auth_method,
               post_logout, backchannel_logout_uri, first_party, allow_scopes, channel,
               jwks_file, id_token_alg, userinfo_alg, org_roles, org_scopes, legacy_systems,
               subject_type, sector_identifier_uri, in_person_checks, protocol, services,
               min_level, release_scopes, profile, jwks_uri, require_par,
               require_signed_request, dpop_bound, mtls_bound, tls_subject_dn, jarm_alg,
               ciba_mode, ciba_notification_endpoint, as_json) -> None:
    from ..clients import ClientError, register_client
    from ..policy import grant_type

    jwks = None
    if jwks_file:
        try:
            with open(jwks_file, encoding="utf-8") as fh:
                jwks = json.load(fh)
        except (OSError, ValueError) as exc:
            fail(f"cannot read --jwks: {exc}", as_json)
    if public and secret:
        fail("--public and --secret exclude each other", as_json)
    method = auth_method or ("none" if public else (
        "private_key_jwt" if jwks or jwks_uri else "client_secret_basic"))
    security = {"profile": profile, "jwks_uri": jwks_uri,
                "require_pushed_authorization_requests": require_par,
                "require_signed_request_object": require_signed_request,
                "dpop_bound_access_tokens": dpop_bound,
                "tls_client_certificate_bound_access_tokens": mtls_bound,
                "tls_client_auth_subject_dn": tls_subject_dn,
                "authorization_signed_response_alg": jarm_alg,
                "backchannel_token_delivery_mode": ciba_mode,
                "backchannel_client_notification_endpoint": ciba_notification_endpoint}
    if protocol != "oidc":
        method = "none"  # CAS and SAML relying parties hold no OAuth secret
    elif method.startswith("client_secret") and not secret:
        secret = secrets.token_urlsafe(32)
    with app_context():
        try:
            row = register_client(
                client_id=client_id, name=name or client_id, secret=secret,
                auth_method=method, redirect_uris=list(redirect_uris),
                grant_types=[grant_type(g) for g in grant_types],
                post_logout_redirect_uris=list(post_logout),
                backchannel_logout_uri=backchannel_logout_uri, first_party=first_party,
                sensitive_scopes=list(allow_scopes), channel=channel, jwks=jwks,
                id_token_alg=id_token_alg, userinfo_alg=userinfo_alg,
                org_roles=list(org_roles), org_scopes=list(org_scopes),
                legacy_systems=list(legacy_systems), subject_type=subject_type,
                sector_identifier_uri=sector_identifier_uri,
                in_person_checks=in_person_checks, protocol=protocol,
                services=list(services), min_level=min_level,
                scopes=list(release_scopes) or None,
                security=security if protocol == "oidc" else None)
        except ClientError as exc:
            fail(str(exc), as_json)
        audit.record("admin.client.add", actor=operator(), client_id=row.client_id,
                     details={"auth_method": method, "grant_types": row.grant_types,
                              "redirect_uris": row.redirect_uris,
                              "sensitive_scopes": list(allow_scopes),
                              "in_person_checks": in_person_checks,
                              "protocol": protocol, "services": list(services),
                              "profile": profile})
        out = {"client_id": row.client_id, "token_endpoint_auth_method": method,
               "client_secret": secret if method.startswith("client_secret") else None,
               "redirect_uris": row.redirect_uris, "grant_types": row.grant_types}
        if in_person_checks:
            out["in_person_checks"] = True
        if profile:
            out["profile"] = profile
        if protocol == "oidc":
            from .client_kind import client_kind

            out["kind"] = client_kind(row.grant_types, row.redirect_uris)
        if protocol != "oidc":
            out.update(protocol=protocol, client_secret=None, grant_types=None,
                       redirect_uris=None, token_endpoint_auth_method=None)
            if services:
                out["services"] = row.cas_services
            if min_level:
                out["min_level"] = min_level
    emit(out, as_json, "\n".join(f"{k}: {v}" for k, v in out.items() if v is not None))
