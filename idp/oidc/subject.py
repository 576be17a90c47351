"""Who a token is about, and how they authenticated."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property

from flask import current_app

from ..authn.assurance import public_amr
from ..models import Client, Person
from ..orgs import org_claim, valid_membership


def subject_for(client: Client, person_id: str) -> str:
    """The ``sub`` a client sees: the internal id, or a pairwise value per sector."""
    if client.subject_type == "pairwise":
        return current_app.extensions["idp.fieldcrypto"].pairwise_subject(client.sector, person_id)
    return person_id


@dataclass
class Subject:
    """A person as seen by one grant: Authlib passes this around as its ``user``.

    ``gid`` names the authorization (the "grant") that tokens descend from: the
    authorization code, then every refresh token rotated from it. Revoking a grant
    revokes all of them at once (code replay, refresh-token reuse, RFC 7009).
    """

    person: Person
    auth_time: int
    gid: str
    sub: str
    acr: str | None = None
    amr: list[str] = field(default_factory=list)
    sid: str | None = None
    membership_id: str | None = None  # acting for an organisation
    channel: str | None = None  # web, app, kiosk, hall, hotline: where the tokens were obtained
    # A clerk or hotline agent who acted for the person (RFC 8693 §4.1 ``act`` shape:
    # {"sub": ..., plus who vouches for it}); None when the person acted alone.
    act: dict | None = None
    # Claims released by name (OIDC ``claims`` parameter): {"id_token": [...],
    # "userinfo": [...]}, see idp.oidc.claims_request.released; None: none.
    claims: dict | None = None

    def get_user_id(self) -> str:
        return self.person.id

    def authentication_claims(self, *, with_sid: bool) -> dict:
        """How and when the person authenticated, and for whom they act: the claims
        ID tokens and access tokens share."""
        claims: dict = {"auth_time": self.auth_time}
        if self.acr:
            claims["acr"] = self.acr
        amr = public_amr(self.amr)
        if amr:
            claims["amr"] = amr
        if self.channel:
            claims["channel"] = self.channel
        if self.act:
            claims["act"] = self.act
        if with_sid and self.sid:
            claims["sid"] = self.sid
        if self.org:
            claims["org"] = self.org
        return claims

    @cached_property
    def org(self) -> dict | None:
        """The organisation acted for, read once per grant request (the access token and
        the ID token both carry it); None when the appointment has just ended."""
        if not self.membership_id:
            return None
        membership = valid_membership(self.membership_id)
        return org_claim(membership) if membership else None


def new_subject(client: Client, person: Person, *, auth_time: int, amr: list[str],
                acr: str | None = None, channel: str | None = None,
                act: dict | None = None) -> Subject:
    """The person as a new grant for ``client`` sees them (device code, CIBA, kiosk
    assertion): a fresh grant id (its tokens are revoked together) and this client's
    ``sub``."""
    return Subject(person=person, auth_time=auth_time, gid=secrets.token_hex(16),
                   sub=subject_for(client, person.id), acr=acr, amr=amr, channel=channel,
                   act=act)
