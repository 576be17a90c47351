"""Durable records. Short-lived state (sessions, codes, counters) lives in ``idp.store``."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from flask import current_app
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


def _uuid() -> str:
    return uuid.uuid4().hex


def _now() -> float:
    return time.time()


def _fieldcrypto():
    return current_app.extensions["idp.fieldcrypto"]


ID_NUMBER = "person.id_number"
PHONE = "person.phone"


def id_number_index(normalised: str) -> str:
    """Blind index for exact look-up by normalised ID number."""
    return _fieldcrypto().blind_index(normalised, ID_NUMBER)


def phone_index(normalised: str) -> str:
    return _fieldcrypto().blind_index(normalised, PHONE)


class Person(db.Model):
    """A citizen. ``id`` is the internal subject; the ID number is never used as ``sub``.

    The ID number and phone are stored SM4-GCM encrypted and found through keyed blind
    indexes (``id_number_index``); read and write them through the plain properties."""

    __tablename__ = "person"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    id_number_enc: Mapped[str] = mapped_column(Text)
    id_number_idx: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    id_kind: Mapped[str] = mapped_column(String(24), default="resident")
    name: Mapped[str] = mapped_column(String(128))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_idx: Mapped[str | None] = mapped_column(String(64), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    assurance_level: Mapped[str] = mapped_column(String(4), default="L2")
    # How the account's level was verified (e.g. "register", "kiosk_face", "counter",
    # "seed"), and when; see idp.authn.assurance.
    assurance_method: Mapped[str | None] = mapped_column(String(32))
    assurance_verified_at: Mapped[float | None] = mapped_column(Float)
    # When the person asked to close the account (注销); erased once the cooling-off
    # period (ACCOUNT_CLOSE_COOLING_DAYS) has passed, unless cancelled (idp.account.closure).
    close_requested_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    updated_at: Mapped[float] = mapped_column(Float, default=_now, onupdate=_now)

    def get_user_id(self) -> str:
        return self.id

    @property
    def id_number(self) -> str:
        return _fieldcrypto().decrypt(self.id_number_enc, ID_NUMBER)

    @id_number.setter
    def id_number(self, normalised: str) -> None:
        self.id_number_enc = _fieldcrypto().encrypt(normalised, ID_NUMBER)
        self.id_number_idx = id_number_index(normalised)

    @property
    def phone(self) -> str | None:
        return _fieldcrypto().decrypt(self.phone_enc, PHONE) if self.phone_enc else None

    @phone.setter
    def phone(self, normalised: str | None) -> None:
        self.phone_enc = _fieldcrypto().encrypt(normalised, PHONE) if normalised else None
        self.phone_idx = phone_index(normalised) if normalised else None


def hash_client_secret(secret: str) -> str:
    """Client secrets are random and long, so one SHA-256 is enough to keep a
    database dump from handing them out; a slow hash would only slow the token endpoint."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Client(db.Model, ClientMixin):
    """A relying party, with OpenID Connect registration metadata kept as one JSON document."""

    __tablename__ = "client"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255), default="")
    client_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    allowed_sensitive_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    # active | disabled (an operator stopped it; find_client no longer answers for it) |
    # pending (a dynamic registration awaiting approval). See idp.client_admin.
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    # After a secret rotation the previous secret keeps working until this time, so a
    # relying party's servers can be redeployed with the new one without an outage.
    secret_previous_hash: Mapped[str | None] = mapped_column(String(128))
    secret_previous_until: Mapped[float | None] = mapped_column(Float)

    def meta(self, key: str, default: Any = None) -> Any:
        return (self.client_metadata or {}).get(key, default)

    @property
    def protocol(self) -> str:
        """"oidc", "cas" or "saml" (clients registered before CAS and SAML have none)."""
        return self.meta("protocol", "oidc")

    @property
    def cas_services(self) -> list[str]:
        """A CAS client's service URL patterns (:mod:`idp.cas.services`)."""
        return self.meta("cas_services", [])

    @property
    def min_level(self) -> str | None:
        """The least assurance level a CAS or SAML sign-in for this client must reach."""
        return self.meta("min_level")

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def redirect_uris(self) -> list[str]:
        return self.meta("redirect_uris", [])

    @property
    def post_logout_redirect_uris(self) -> list[str]:
        return self.meta("post_logout_redirect_uris", [])

    @property
    def backchannel_logout_uri(self) -> str | None:
        return self.meta("backchannel_logout_uri")

    @property
    def token_endpoint_auth_method(self) -> str:
        return self.meta("token_endpoint_auth_method", "client_secret_basic")

    @property
    def grant_types(self) -> list[str]:
        return self.meta("grant_types", ["authorization_code", "refresh_token"])

    @property
    def id_token_signed_response_alg(self) -> str | None:
        return self.meta("id_token_signed_response_alg")

    @property
    def jwks(self) -> dict | None:
        return self.meta("jwks")

    @property
    def subject_type(self) -> str:
        return self.meta("subject_type", "public")

    @property
    def sector(self) -> str:
        """The host that pairwise subjects are computed for (OIDC Core §8.1), fixed at
        registration: the sector identifier URI's host, else the redirect URIs' host."""
        return self.meta("sector", self.client_id)

    # -- authlib ClientMixin -------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(scope_to_list(self.meta("scope", "openid profile phone offline_access")))
        allowed.update(self.allowed_sensitive_scopes or [])
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match only (OAuth 2.0 Security BCP): no prefixes, no wildcards.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.client_secret_hash or not client_secret:
            return False
        given = hash_client_secret(client_secret)
        if hmac.compare_digest(self.client_secret_hash, given):
            return True
        return bool(self.secret_previous_hash and (self.secret_previous_until or 0) > time.time()
                    and hmac.compare_digest(self.secret_previous_hash, given))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        # Introspection and revocation accept any method the client can prove, except none.
        if method == "none":
            return endpoint == "revocation" and self.is_public
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.meta("response_types", ["code"])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class Consent(db.Model):
    """What a person allowed a client to receive; asked again only for scopes not yet allowed."""

    __tablename__ = "consent"

    person_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    scopes: Mapped[str] = mapped_column(Text, default="")
    # Claims allowed by name (OIDC ``claims`` parameter), beyond those of the scopes.
    claims: Mapped[str] = mapped_column(Text, default="", server_default="")
    granted_at: Mapped[float] = mapped_column(Float, default=_now)


class RefreshToken(db.Model):
    """A refresh token, stored as its SHA-256 only.

    Tokens issued from one authorization share a ``family_id``; each use rotates the
    token, and presenting a rotated one again revokes the whole family (OAuth 2.0
    Security BCP §4.14)."""

    __tablename__ = "refresh_token"
    __table_args__ = (Index("ix_refresh_token_family", "family_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    family_id: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    auth_time: Mapped[int] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(String(16))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    sid: Mapped[str | None] = mapped_column(String(64))
    membership_id: Mapped[str | None] = mapped_column(String(32), index=True)
    channel: Mapped[str | None] = mapped_column(String(16))
    act: Mapped[dict | None] = mapped_column(JSON)
    # The key or certificate the token is bound to ({"jkt": ...} for DPoP, RFC 9449 §5;
    # {"x5t#S256": ...} for mutual TLS, RFC 8705 §3); None for an unbound token.
    cnf: Mapped[dict | None] = mapped_column(JSON)
    # The resource indicators (RFC 8707) the grant was limited to; None: this provider.
    resource: Mapped[list[str] | None] = mapped_column(JSON)
    # Claims released by name (OIDC ``claims`` parameter), per member; None: none.
    claims: Mapped[dict | None] = mapped_column(JSON)
    issued_at: Mapped[float] = mapped_column(Float, default=_now)
    expires_at: Mapped[float] = mapped_column(Float)
    rotated_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    # -- authlib TokenMixin, used by revocation/introspection --------------------
    def check_client(self, client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - self.issued_at)

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.rotated_at is not None


class SigningKey(db.Model):
    """A token-signing key. Kept published after retirement until its tokens expire."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    retired_at: Mapped[float | None] = mapped_column(Float)


class KVEntry(db.Model):
    """The embedded short-lived store's table (see ``idp.store.sql``)."""

    __tablename__ = "kv_entry"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


ORG_ROLES = ("legal_rep", "admin", "agent")


class Organisation(db.Model):
    """An enterprise or organisation, keyed by its unified social credit code. It has
    no password of its own: people act for it through memberships."""

    __tablename__ = "organisation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    uscc: Mapped[str] = mapped_column(String(18), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    org_type: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[float] = mapped_column(Float, default=_now)


# Legacy imports find an organisation by the old organisation code its credit code
# embeds (positions 9-17): migration 0010.
Index("ix_organisation_org_code", func.substr(Organisation.uscc, 9, 9))


class Membership(db.Model):
    """A person's standing to act for an organisation: role, business scopes, validity.

    Revocation sets ``revoked_at``; tokens minted under the membership check it on
    every use (introspection, userinfo, refresh), so it takes effect at once."""

    __tablename__ = "membership"
    __table_args__ = (Index("ix_membership_person_org", "person_id", "org_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    org_id: Mapped[str] = mapped_column(String(32), index=True)
    person_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[float] = mapped_column(Float, default=_now)
    valid_until: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    appointed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float, default=_now)

    def is_valid(self, at: float | None = None) -> bool:
        now = time.time() if at is None else at
        return (self.revoked_at is None and self.valid_from <= now
                and (self.valid_until is None or now < self.valid_until))

    def covers(self, scopes: list[str]) -> bool:
        return "all" in self.scopes or set(scopes) <= set(self.scopes)


class LegacyAccount(db.Model):
    """An account of an older government system, keyed by (source, legacy id).

    The row as last read is kept SM4-GCM encrypted (it holds ID numbers and phones) with
    its fingerprint, so a re-run skips unchanged rows, updates changed ones and flags
    rows gone from the source; nothing is deleted."""

    __tablename__ = "legacy_account"
    __table_args__ = (UniqueConstraint("source", "legacy_id", name="uq_legacy_source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    legacy_id: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    row_enc: Mapped[str] = mapped_column(Text)
    person_id: Mapped[str | None] = mapped_column(String(32), index=True)
    org_id: Mapped[str | None] = mapped_column(String(32), index=True)  # organisation rows
    state: Mapped[str] = mapped_column(String(16))  # merged|created|queued|invalid|gone
    rule: Mapped[str] = mapped_column(String(64))  # the rule that decided, for the record
    password_hash: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[float] = mapped_column(Float, default=_now)
    last_seen: Mapped[float] = mapped_column(Float, default=_now)
    run_id: Mapped[str] = mapped_column(String(32), index=True)


class ReviewItem(db.Model):
    """A decision the importer would not make alone: an administrator approves, rejects
    or merges into a chosen person, and may undo."""

    __tablename__ = "review_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    legacy_account_id: Mapped[int] = mapped_column(Integer, index=True)
    reason: Mapped[str] = mapped_column(String(64))
    candidates: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    # What a decision changed, so that undo can put it back.
    outcome: Mapped[dict] = mapped_column(JSON, default=dict)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class TotpCredential(db.Model):
    """A person's TOTP authenticator (RFC 6238). The shared secret is SM4-GCM encrypted;
    ``last_step`` is the newest time step accepted, so a code is never accepted twice."""

    __tablename__ = "totp_credential"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    secret_enc: Mapped[str] = mapped_column(Text)
    last_step: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_at: Mapped[float | None] = mapped_column(Float)  # None until a code proved it
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class WebAuthnCredential(db.Model):
    """A passkey or platform authenticator (fingerprint, face) registered with WebAuthn.

    ``level`` is the session level the person held when it was bound: a credential
    bound at ``L4`` proves ``L4`` at later sign-ins (idp.authn.assurance)."""

    __tablename__ = "webauthn_credential"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    credential_id: Mapped[str] = mapped_column(String(512), unique=True, index=True)  # b64url
    public_key: Mapped[str] = mapped_column(Text)  # COSE key, b64url
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    aaguid: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(4), default="L3")
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    last_used_at: Mapped[float | None] = mapped_column(Float)


# reviewer / admin: the legacy-account review queue (admin may also merge persons).
# system_admin / security_admin / audit_admin: the three separated duties of MLPS
# level 3 (等保三级 三员分立); see admin.roles for what each may do.
ADMIN_ROLES = ("reviewer", "admin", "system_admin", "security_admin", "audit_admin")


class AdminRole(db.Model):
    """A person's standing in the admin console (``admin/``): ``reviewer`` decides review
    items; ``admin`` may also merge persons and grant roles. Granted by the CLI only."""

    __tablename__ = "admin_role"

    person_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[float] = mapped_column(Float, default=_now)


class MergeRecord(db.Model):
    """Two persons found to be one citizen: what moved from ``absorbed_id`` to
    ``survivor_id`` (row ids per table, consents before and after), so that
    ``connectors.merge.undo_merge`` can put back exactly that. While ``undone_at`` is
    empty, this record is the absorbed person's "merged into" pointer."""

    __tablename__ = "merge_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(32), index=True)
    absorbed_id: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    moved: Mapped[dict] = mapped_column(JSON, default=dict)
    absorbed_status: Mapped[str] = mapped_column(String(16))
    # The absorbed person's password hash, taken off the person while merged.
    absorbed_password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    undone_at: Mapped[float | None] = mapped_column(Float)
    undone_by: Mapped[str | None] = mapped_column(String(64))
