"""Password lockout per account: a budget of wrong guesses that parallel requests share.

    guard = lockout.begin(key)        # None: locked (or no budget free in time)
    ok = verify_password(...)
    if ok:
        guard.succeeded()
    else:
        locked_now = guard.failed()

Why tickets rather than counting attempts up front: counting every attempt before its
check makes right passwords that arrive together fail as "locked" (16 parallel
sign-ins with the right password: 11 refused, and the account locked). Counting only
failures afterwards would let a burst of guesses all pass the check before the first
is counted. So each check first takes one of ``LOCKOUT_THRESHOLD`` numbered tickets
(``store().add``, atomic): a wrong password keeps its ticket for ``LOCKOUT_SECONDS``, a
right one hands it back. At most THRESHOLD passwords are therefore ever being checked
or counted as wrong at once, in parallel or not, and right ones never use up the
budget. A check that finds every ticket taken by checks still running waits for one
to be handed back (``LOCKOUT_WAIT_SECONDS`` at most); when every ticket holds a
failure the account is locked.

A success starts a new generation of tickets (the usual "a right password clears the
count") instead of deleting the old ones, which checks still running may hold.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass

from flask import current_app

from .. import metrics
from ..store import store

# A check holds its ticket this long at most before it is taken to have died (a check
# that raised never hands its ticket back); longer than any password hash takes, so a
# running check's ticket is never given to another.
_INFLIGHT_SECONDS = 60
_FAILED = "failed"


def _cfg() -> tuple[int, int]:
    cfg = current_app.config
    return max(1, int(cfg["LOCKOUT_THRESHOLD"])), int(cfg["LOCKOUT_SECONDS"])


def is_locked(key: str) -> bool:
    return store().get(f"lock:{key}") is not None


def _lock(key: str) -> None:
    store().set(f"lock:{key}", 1, _cfg()[1])
    metrics.lockout()


def _generation(key: str) -> str:
    gen_key = f"pwgen:{key}"
    store().add(gen_key, secrets.token_hex(4), _cfg()[1])
    return store().get(gen_key) or "0"


def _ticket_keys(key: str, gen: str) -> list[str]:
    return [f"pwtry:{key}:{gen}:{i}" for i in range(_cfg()[0])]


def _failures(keys: list[str]) -> int:
    return sum(1 for k in keys if store().get(k) == _FAILED)


@dataclass
class Guard:
    """One password check holding one ticket of the account's budget."""

    key: str
    ticket: str
    tickets: list[str]

    def succeeded(self) -> None:
        store().delete(self.ticket)
        store().set(f"pwgen:{self.key}", secrets.token_hex(4), _cfg()[1])

    def failed(self) -> bool:
        """Keep the ticket as a counted failure; True when that locked the account."""
        seconds = _cfg()[1]
        store().set(self.ticket, _FAILED, seconds)
        # The generation must outlive its failures, or they would be forgotten early.
        store().touch(f"pwgen:{self.key}", seconds)
        if _failures(self.tickets) >= len(self.tickets):
            _lock(self.key)
            return True
        return False


def _take(tickets: list[str]) -> str | None:
    for ticket in tickets:
        if store().add(ticket, "checking", _INFLIGHT_SECONDS):
            return ticket
    return None


def clear(key: str) -> None:
    """The account's password was just reset by someone who proved who they are: lift a
    lock and forget counted failures (a new generation, as after a right password).
    Guesses at the old password say nothing about the new one."""
    store().delete(f"lock:{key}")
    store().set(f"pwgen:{key}", secrets.token_hex(4), _cfg()[1])


def begin(key: str) -> Guard | None:
    """A ticket for one password check of the account ``key``, or None: locked.

    May wait for checks of the same account to finish: the caller should hold no
    database connection meanwhile, or enough waiting sign-ins would drain the pool."""
    deadline = time.monotonic() + float(current_app.config["LOCKOUT_WAIT_SECONDS"])
    while not is_locked(key):
        tickets = _ticket_keys(key, _generation(key))
        ticket = _take(tickets)
        if ticket is not None:
            return Guard(key, ticket, tickets)
        if _failures(tickets) >= len(tickets):
            _lock(key)  # the last failure's request died before it could lock
            return None
        if time.monotonic() >= deadline:
            # Checks as many as the budget are still running after all this time:
            # refusing is the only answer that cannot exceed it.
            return None
        time.sleep(random.uniform(0.01, 0.05))  # noqa: S311 - jitter, not a secret
    return None
