"""Assurance levels (``acr`` values) and how a session reaches one.

The levels follow the provincial unified-identity platforms:

- ``L2`` self-declared details: format checks only, phone verified;
- ``L3`` real name: name and ID number verified against the population (or
  legal-entity) register;
- ``L4`` real person, real name, real document: a face matched against the document,
  an ID-card chip read with a face match at a kiosk, or a WebAuthn credential that
  was bound while the person stood at ``L4``;
- ``L5`` in person at a counter, or a digital certificate.

Two things limit what a session may claim, and the lower one wins:

1. what the *account* has been verified to (``Person.assurance_level``, with
   ``assurance_method`` saying how) — nobody is more real-name than the register says;
2. what the *authenticators used in this session* prove. One knowledge or possession
   factor (a password, an SMS code, a TOTP code) proves only ``L2``; two factors, or
   a WebAuthn credential with user verification (itself multi-factor), prove ``L3``;
   a credential bound at ``L4``, or a chip read with face match, prove ``L4``; a
   counter clerk's in-person check proves ``L5``.

So a real-name citizen who signs in with a password holds an ``L2`` session and steps
up to ``L3`` with an SMS code; nothing short of a kiosk or an ``L4`` passkey gives
``L4``. The ID token's ``acr`` is the session's level, never the level asked for.
"""

from __future__ import annotations

from collections.abc import Iterable

LEVELS = ("L1", "L2", "L3", "L4", "L5")

# amr values (RFC 8176 where one exists) and what each proves on its own.
# A sign-in at an upstream provider ("fed") counts as one factor, like a password: we
# cannot see which factors the upstream checked.
KNOWLEDGE = {"pwd", "fed"}
POSSESSION = {"sms", "otp", "qr"}
MULTIFACTOR = {"hwk", "swk"}  # WebAuthn with user verification (RFC 8176: hwk/swk)

# Extra markers a session may carry in ``amr`` that raise the ceiling by themselves.
CEILING_MARKERS = {
    "face": "L4",     # face matched against the document (with "idcard" at a kiosk)
    "idcard": "L4",
    "L4key": "L4",    # internal: a WebAuthn credential bound at L4 (not put in tokens)
    "counter": "L5",  # identity checked in person by a clerk
    # internal: a citizen's certificate checked by idp.authn.cert_login (tokens say "sc")
    "cert": "L5",
}

INTERNAL_AMR = {"L4key", "cert"}


def rank(level: str | None) -> int:
    """Position of ``level`` (0 for unknown/None), so levels compare as numbers."""
    try:
        return LEVELS.index(level) + 1 if level else 0
    except ValueError:
        return 0


def lower(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if rank(a) <= rank(b) else b


def meets(reached: str | None, asked: str | None) -> bool:
    return asked is None or rank(reached) >= rank(asked)


def required_level(acr_values: str | None) -> str | None:
    """The level a request needs: the lowest of the recognised ``acr_values`` (the client
    listed every value it accepts, OIDC Core §3.1.2.1); None if it named none of ours."""
    asked = [v for v in (acr_values or "").split() if v in LEVELS]
    return min(asked, key=rank) if asked else None


def authenticator_level(amr: Iterable[str]) -> str:
    """What the authenticators used in a session prove, regardless of the account."""
    used = set(amr)
    level = "L1"
    factors = 0
    if used & KNOWLEDGE:
        factors += 1
    if used & POSSESSION:
        factors += 1
    if used & (KNOWLEDGE | POSSESSION):
        level = "L2"
    if factors >= 2 or used & MULTIFACTOR:
        level = "L3"
    for marker, ceiling in CEILING_MARKERS.items():
        if marker in used and rank(ceiling) > rank(level):
            level = ceiling
    return level


def session_level(account_level: str | None, amr: Iterable[str]) -> str:
    """The ``acr`` a session holds: the lower of the account's verified level and what
    its authenticators prove."""
    return lower(account_level or "L2", authenticator_level(amr)) or "L2"


def public_amr(amr: Iterable[str]) -> list[str]:
    """``amr`` as tokens carry it: in order, without duplicates or internal markers."""
    seen: list[str] = []
    for value in amr:
        if value not in seen and value not in INTERNAL_AMR:
            seen.append(value)
    return seen
