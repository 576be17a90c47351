"""Relying parties through the API (system administrator), and admin API clients (each
administrator makes their own, with at most their own permissions)."""

from __future__ import annotations

import secrets
from typing import Literal

from flask import g
from pydantic import BaseModel, Field

from idp import audit, client_admin
from idp.clients import ClientError, register_client
from idp.crypto.keys import SIGNING_ALGS
from idp.extensions import db

from .. import api_credentials, roles
from .spec import APIError, Paging, Strict, endpoint

CLIENT = {"client_id": {"type": "string", "minLength": 1, "maxLength": 128,
                        "pattern": "^[A-Za-z0-9._~-]{1,128}$"}}
Channel = Literal["web", "app", "kiosk", "hall", "hotline"]
Alg = Literal[SIGNING_ALGS]  # type: ignore[valid-type]
Profile = Literal["fapi2"]
PROFILE_HELP = ("Security profile: fapi2 (FAPI 2.0: PAR, PKCE S256, private_key_jwt or mTLS, "
                "sender-constrained tokens, short-lived codes) or null for none; refused "
                "(400) when the registration cannot meet it.")
Uri = str  # checked by idp.clients like a registration (https, loopback, private-use)


class ClientsQuery(Paging):
    status: Literal["active", "disabled", "pending"] | None = None
    channel: Channel | None = None
    q: str | None = Field(None, max_length=128)
    kind: Literal["relying_party", "admin_api"] | None = Field(
        None, description="Relying parties only, or the admin API's own clients only.")
    owner: str | None = Field(None, max_length=32, pattern="^[0-9a-f]{1,32}$",
                              description="Admin API clients made by this person (id).")


class ClientOut(BaseModel):
    client_id: str
    name: str
    status: str
    channel: str
    first_party: bool
    protocol: str
    auth_method: str
    has_secret: bool
    previous_secret_valid_until: float | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str | None
    grant_types: list[str]
    sensitive_scopes: list[str]
    id_token_alg: str | None
    jwks: dict | None
    jwks_uri: str | None
    profile: Profile | None = Field(description=PROFILE_HELP)
    admin_scopes: list[str]
    admin_owner: str | None
    created_at: float


class ClientsList(BaseModel):
    items: list[ClientOut]
    total: int
    page: int
    per_page: int


class ClientChanges(Strict):
    """Only the fields sent change."""

    name: str | None = Field(None, min_length=1, max_length=255)
    redirect_uris: list[Uri] | None = Field(None, max_length=20)
    post_logout_redirect_uris: list[Uri] | None = Field(None, max_length=20)
    backchannel_logout_uri: Uri | None = None
    grant_types: list[str] | None = Field(None, max_length=8)
    sensitive_scopes: list[Literal["idcard"]] | None = None
    channel: Channel | None = None
    id_token_alg: Alg | None = None
    jwks: dict | None = None
    jwks_uri: Uri | None = None
    first_party: bool | None = None
    profile: Profile | None = Field(None, description=PROFILE_HELP)


class NewClient(Strict):
    client_id: str | None = Field(None, min_length=1, max_length=128,
                                  pattern="^[A-Za-z0-9._~-]+$")
    name: str = Field(min_length=1, max_length=255)
    channel: Channel = "web"
    auth_method: Literal["client_secret_basic", "client_secret_post", "private_key_jwt",
                         "none"] = "client_secret_basic"
    redirect_uris: list[Uri] = Field(default_factory=list, max_length=20)
    post_logout_redirect_uris: list[Uri] = Field(default_factory=list, max_length=20)
    backchannel_logout_uri: Uri | None = None
    grant_types: list[str] = Field(default_factory=list, max_length=8)
    sensitive_scopes: list[Literal["idcard"]] = Field(default_factory=list)
    id_token_alg: Alg | None = None
    jwks: dict | None = None
    first_party: bool = False
    profile: Profile | None = Field(None, description=PROFILE_HELP)


class Created(BaseModel):
    client: ClientOut
    client_secret: str | None = Field(description="Shown once; only its hash is kept.")


class StatusBody(Strict):
    reason: str = Field("", max_length=500)


class RotateBody(Strict):
    grace_seconds: int = Field(86400, ge=0, le=client_admin.MAX_GRACE_SECONDS,
                               description="How long the previous secret keeps working.")


class Rotated(BaseModel):
    client_secret: str
    previous_valid_until: float | None


class StatsOut(BaseModel):
    active_grants: int
    people_with_consent: int
    sign_ins_24h: int
    tokens_24h: int
    failures_24h: int


class Deleted(BaseModel):
    revoked: int
    consents: int


class NewApiClient(Strict):
    name: str = Field(min_length=1, max_length=255)
    scopes: list[Literal[tuple(roles.SCOPES)]] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=len(roles.SCOPES))


def _client(client_id: str):
    row = client_admin.get(client_id)
    if row is None:
        raise APIError(404, "not_found", "No such client.")
    return row


def _refused(exc: Exception):
    db.session.rollback()
    return APIError(400 if isinstance(exc, ClientError) else 409, "invalid_client_metadata",
                    str(exc))


@endpoint("get", "/clients", summary="List relying parties", permission="clients.read",
          tag="clients", query=ClientsQuery, out=ClientsList)
def list_clients(query: ClientsQuery):
    rows, total = client_admin.listing(status=query.status, channel=query.channel, q=query.q,
                                       kind=query.kind, owner=query.owner,
                                       page=query.page, per_page=query.per_page)
    return {"items": [client_admin.describe(r) for r in rows], "total": total,
            "page": query.page, "per_page": query.per_page}


@endpoint("post", "/clients", summary="Register a relying party", permission="clients.write",
          tag="clients", body=NewClient, out=Created, status=201, errors=(409,))
def create_client(body: NewClient):
    client_id = body.client_id or "rp-" + secrets.token_hex(6)
    secret = secrets.token_urlsafe(32) if body.auth_method.startswith("client_secret") \
        else None
    try:
        row = register_client(
            client_id=client_id, name=body.name, secret=secret, auth_method=body.auth_method,
            redirect_uris=body.redirect_uris, grant_types=body.grant_types,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            backchannel_logout_uri=body.backchannel_logout_uri, first_party=body.first_party,
            sensitive_scopes=body.sensitive_scopes, channel=body.channel, jwks=body.jwks,
            id_token_alg=body.id_token_alg,
            security={"profile": body.profile} if body.profile else None)
    except ClientError as exc:
        raise _refused(exc) from None
    audit.record("admin.client.add", actor=g.admin_id, client_id=row.client_id,
                 details={"channel": row.channel, "auth_method": body.auth_method,
                          "profile": body.profile})
    return {"client": client_admin.describe(row), "client_secret": secret}


@endpoint("get", "/clients/{client_id}", summary="One relying party", permission="clients.read",
          tag="clients", out=ClientOut, params=CLIENT)
def get_client(client_id: str):
    return client_admin.describe(_client(client_id))


@endpoint("post", "/clients/{client_id}", summary="Change registration metadata",
          permission="clients.write", tag="clients", body=ClientChanges, out=ClientOut,
          params=CLIENT, errors=(409,))
def update_client(client_id: str, body: ClientChanges):
    _client(client_id)
    try:
        row = client_admin.update(client_id, body.model_dump(exclude_unset=True),
                                  actor=g.admin_id)
    except ClientError as exc:
        raise _refused(exc) from None
    return client_admin.describe(row)


def _status(client_id: str, status: str, reason: str):
    _client(client_id)
    try:
        return client_admin.describe(client_admin.set_status(client_id, status,
                                                             actor=g.admin_id, reason=reason))
    except ClientError as exc:
        raise APIError(409, "conflict", str(exc)) from None


@endpoint("post", "/clients/{client_id}/disable", summary="Disable: no sign-in, no tokens; "
          "refresh tokens revoked", permission="clients.write", tag="clients",
          body=StatusBody, out=ClientOut, params=CLIENT, errors=(409,))
def disable_client(client_id: str, body: StatusBody):
    return _status(client_id, "disabled", body.reason)


@endpoint("post", "/clients/{client_id}/enable", summary="Enable again, or approve a pending "
          "registration", permission="clients.write", tag="clients", body=StatusBody,
          out=ClientOut, params=CLIENT, errors=(409,))
def enable_client(client_id: str, body: StatusBody):
    if _client(client_id).status == "pending":  # approval: through the onboarding rules
        _onboard(client_id, "approve_client", reason=body.reason.strip())
        return client_admin.describe(_client(client_id))
    return _status(client_id, "active", body.reason)


class ApproveBody(Strict):
    grant_sensitive: bool = Field(False, description="Also allow the sensitive scopes the "
                                                     "registration asked for.")
    grant_channel: bool = Field(False, description="Also give it the channel it asked for "
                                                   "(other than web/app).")
    reason: str = Field("", max_length=500, description="Kept in the audit log.")


class Rejected(BaseModel):
    client_id: str
    status: Literal["rejected"]


def _onboard(client_id: str, decide, **kw):
    """Approve or reject a pending registration through idp.onboarding (what the console
    and ``idp client approve|reject`` call); 409 when it is not pending."""
    _client(client_id)
    from idp import onboarding

    try:
        getattr(onboarding, decide)(client_id, actor=g.admin_id, **kw)
    except ClientError as exc:
        db.session.rollback()
        raise APIError(409, "conflict", str(exc)) from None


@endpoint("post", "/clients/{client_id}/approve", summary="Approve a pending (dynamically "
          "registered) client: it goes live; what it asked for beyond the basics only if "
          "granted here", permission="clients.write", tag="clients", body=ApproveBody,
          out=ClientOut, params=CLIENT, errors=(409,))
def approve_client(client_id: str, body: ApproveBody):
    _onboard(client_id, "approve_client", grant_sensitive=body.grant_sensitive,
             grant_channel=body.grant_channel, reason=body.reason.strip())
    return client_admin.describe(_client(client_id))


@endpoint("post", "/clients/{client_id}/reject", summary="Reject a pending registration (it "
          "is removed, its registration access token with it)", permission="clients.write",
          tag="clients", body=StatusBody, out=Rejected, params=CLIENT, errors=(409,))
def reject_client(client_id: str, body: StatusBody):
    _onboard(client_id, "reject_client", reason=body.reason.strip())
    return {"client_id": client_id, "status": "rejected"}


@endpoint("post", "/clients/{client_id}/delete", summary="Delete for good (grants revoked, "
          "consents forgotten)", permission="clients.write", tag="clients", body=StatusBody,
          out=Deleted, params=CLIENT, errors=(409,))
def delete_client(client_id: str, body: StatusBody):
    _client(client_id)
    try:
        return client_admin.delete(client_id, actor=g.admin_id, reason=body.reason)
    except ClientError as exc:
        raise APIError(409, "conflict", str(exc)) from None


@endpoint("post", "/clients/{client_id}/rotate-secret", summary="A new secret; the previous "
          "one stays valid for grace_seconds", permission="clients.write", tag="clients",
          body=RotateBody, out=Rotated, params=CLIENT, errors=(409,))
def rotate_secret(client_id: str, body: RotateBody):
    _client(client_id)
    try:
        secret, until = client_admin.rotate_secret(client_id, actor=g.admin_id,
                                                   grace_seconds=body.grace_seconds)
    except ClientError as exc:
        raise APIError(409, "conflict", str(exc)) from None
    return {"client_secret": secret, "previous_valid_until": until}


@endpoint("get", "/clients/{client_id}/stats", summary="Figures of the last 24 hours",
          permission="clients.read", tag="clients", out=StatsOut, params=CLIENT)
def client_stats(client_id: str):
    return client_admin.stats(_client(client_id).client_id)


# -- admin API clients -----------------------------------------------------------------


@endpoint("post", "/api-clients", summary="Make an API client that acts for you (session "
          "only), with some of the admin:* scopes your roles open",
          permission="api_clients.own", tag="api-clients", body=NewApiClient, out=Created,
          status=201)
def new_api_client(body: NewApiClient):
    if g.admin_bearer:
        raise APIError(403, "access_denied", "an API client cannot make API clients")
    try:
        row, secret = api_credentials.create(body.name, list(body.scopes), owner=g.admin_id,
                                             held=g.admin_roles)
    except ClientError as exc:
        raise APIError(403, "access_denied", str(exc)) from None
    return {"client": client_admin.describe(row), "client_secret": secret}


class ApiClientsQuery(Paging):
    status: Literal["active", "disabled"] | None = None


class ApiClientOut(BaseModel):
    client_id: str
    name: str
    status: str
    owner: str = Field(description="The administrator it acts for (person id).")
    scopes: list[str]
    has_secret: bool
    previous_secret_valid_until: float | None
    created_at: float


class ApiClientsList(BaseModel):
    items: list[ApiClientOut]
    total: int
    page: int
    per_page: int


@endpoint("get", "/api-clients", summary="Your own admin API clients (a system administrator "
          "sees everyone's with GET /admin/api/clients?kind=admin_api)",
          permission="api_clients.own", tag="api-clients", query=ApiClientsQuery,
          out=ApiClientsList)
def list_api_clients(query: ApiClientsQuery):
    rows, total = api_credentials.owned_by(g.admin_owner, status=query.status,
                                           page=query.page, per_page=query.per_page)
    return {"items": [api_credentials.describe(r) for r in rows], "total": total,
            "page": query.page, "per_page": query.per_page}
