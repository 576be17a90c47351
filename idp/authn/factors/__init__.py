"""Authenticators behind one small interface (:mod:`.base`), and the registry the
step-up page loops over.

``REGISTERED`` is every authenticator, in the order the step-up page shows them;
:func:`offer` says which of them can take a session to the level asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Authenticator, FormStepUp, Goal, Outcome, StepUp
from .elsewhere import Certificate, FaceMatch, Passkey, Upstream
from .forms import Password, SmsCode, TotpCode

REGISTERED: tuple[Authenticator, ...] = (
    SmsCode(), TotpCode(), Password(), Passkey(), FaceMatch(), Certificate(), Upstream())


def step_ups() -> list[StepUp]:
    return [a for a in REGISTERED if isinstance(a, StepUp)]


def owner_of(action: str | None) -> FormStepUp | None:
    """The authenticator whose step-up form posts ``action``."""
    for a in REGISTERED:
        if isinstance(a, FormStepUp) and action in a.actions:
            return a
    return None


@dataclass
class Offer:
    """What the step-up page offers for one goal."""

    goal: Goal
    shown: list[StepUp]

    @property
    def realname(self) -> bool:
        """The real-name step comes first: it is needed, and a factor offered after it
        could then reach the goal (else there is no point in it)."""
        return self.goal.realname_first and any(a.after_realname for a in self.shown)

    def __contains__(self, name: str) -> bool:
        return any(a.name == name for a in self.shown)

    def flags(self) -> dict[str, Any]:
        """``{name: offered}`` for every step-up, plus ``any`` and ``realname`` (for
        the templates)."""
        flags: dict[str, Any] = {a.name: a in self.shown for a in step_ups()}
        return {**flags, "any": bool(self.shown), "realname": self.realname}


def offer(goal: Goal) -> Offer:
    return Offer(goal, [a for a in step_ups() if a.reaches(goal)])


__all__ = ["REGISTERED", "Authenticator", "FormStepUp", "Goal", "Offer", "Outcome", "StepUp",
           "offer", "owner_of", "step_ups"]
