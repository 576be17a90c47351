"""What an authenticator is, as a few small capabilities (Dex's ``connector.go`` is the
model): every authenticator is an :class:`Authenticator`; the ones the step-up page can
offer are also a :class:`StepUp`, and those proven by the page's own form a
:class:`FormStepUp`. Pages ask for a capability (``isinstance``) instead of naming
authenticators, so adding one is one class in the registry and one partial template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from .. import assurance


@dataclass(frozen=True)
class Goal:
    """A signed-in person's session that must reach ``asked``: the question every
    step-up capability answers."""

    person: Any
    sess: Any
    asked: str | None

    @cached_property
    def realname_first(self) -> bool:
        """Whether the account must verify its real name before any factor counts: asked
        for ``L3`` or more, it stands below ``L3``, and no second factor changes that."""
        return (assurance.rank(self.asked) >= assurance.rank("L3")
                and assurance.rank(self.person.assurance_level) < assurance.rank("L3"))

    @cached_property
    def account(self) -> str | None:
        """The account's level once the real-name step (if needed) is done: what the
        factors are weighed against."""
        return "L3" if self.realname_first else self.person.assurance_level

    def reached_with(self, amr: list[str], account: str | None = None) -> bool:
        """Whether adding ``amr`` to the session reaches the goal, on an account at
        ``account`` (default: :attr:`account`)."""
        level = assurance.session_level(account or self.account, [*self.sess.amr, *amr])
        return assurance.meets(level, self.asked)


@dataclass
class Outcome:
    """What one POSTed step-up action came to."""

    amr: list[str] | None = None   # proven: what to add to the session
    failed: bool = False           # refused in a way worth auditing (``reason``)
    reason: str | None = None
    error: str | None = None       # shown on the page
    notice: str | None = None
    state: dict[str, Any] = field(default_factory=dict)  # for the partials (e.g. sms_sent)

    @classmethod
    def passed(cls, amr: list[str]) -> Outcome:
        return cls(amr=list(amr))

    @classmethod
    def refused(cls, reason: str | None, message: str, **state: Any) -> Outcome:
        return cls(failed=True, reason=reason, error=message, state=state)


@runtime_checkable
class Authenticator(Protocol):
    """Something that proves who a person is. It exists so that what each way of signing
    in is worth (``amr``, ``level``) is declared once, beside the code that runs it,
    and checked against :mod:`idp.authn.assurance` by the tests instead of being
    spread over the pages."""

    name: str
    # The amr a success adds at most (internal markers included: they set ceilings).
    amr: tuple[str, ...]
    # The highest level it proves on its own (the account's level may hold it lower).
    level: str

    def available_for(self, person) -> bool:
        """Whether this person could use it now (enrolled, configured)."""
        ...


@runtime_checkable
class StepUp(Protocol):
    """An authenticator the step-up page can offer. It exists because whether one is
    worth offering depends on what it adds to *this* session on *this* account, which
    only the authenticator knows."""

    template: str          # the partial the step-up page includes for it
    after_realname: bool   # offered only once the account's real name is verified

    def reaches(self, goal: Goal) -> bool:
        ...


@runtime_checkable
class FormStepUp(StepUp, Protocol):
    """A step-up proven by posting the step-up page's own form (the others run on their
    own endpoints: a passkey's JSON ceremony, the face capture page, the certificate
    page). It exists so that the page can hand a POSTed ``action`` to its owner
    without knowing any authenticator."""

    actions: tuple[str, ...]

    def handle(self, action: str, form, goal: Goal) -> Outcome:
        ...
