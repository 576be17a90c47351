"""Who a token is about, and how they authenticated."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import Person


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
    acr: str | None = None
    amr: list[str] = field(default_factory=list)
    sid: str | None = None

    def get_user_id(self) -> str:
        return self.person.id
