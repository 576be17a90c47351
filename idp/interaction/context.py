"""What a check answers, and what it looks at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..authn import session as sso
from .request import PendingRequest


@dataclass
class Needed:
    """The person must visit ``page`` (an endpoint taking ``rid``) to satisfy ``prompt``
    (``login``, ``level``, ``consent``, ``enterprise``, …). Under ``prompt=none`` (CAS
    gateway, SAML IsPassive) the protocol answers with its own error instead."""

    prompt: str
    page: str


@dataclass
class Refused:
    """The request ends without issuing: ``reason`` ``access_denied`` (the person said
    no), ``unmet`` (the level asked cannot be reached), ``org_refused`` (the person
    cannot act for the organisation asked for; ``detail`` the USCC or None)."""

    reason: str
    detail: Any = None


@dataclass
class Context:
    """What the checks look at, and what they leave for completion."""

    request: PendingRequest
    session: sso.SSOSession | None
    client: Any
    # Set by the enterprise check when the person acts for an organisation.
    membership: Any = None

    @property
    def person(self):
        return self.session.person if self.session else None

    @property
    def scope(self) -> str:
        return self.client.get_allowed_scope(" ".join(self.request.scopes))

    @property
    def fresh(self) -> bool:
        """A sign-in made after this request began satisfies prompt=login and max_age."""
        return (self.request.stored and self.session is not None
                and self.session.auth_time >= int(self.request.created))
