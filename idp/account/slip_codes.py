"""One-time codes a person carries between a hall counter and the account pages (a
password-reset slip, a phone-change reference): drawn from letters and digits nobody
mixes up when reading them off paper or a screen, typed back in any case and with any
separators, and kept only as a keyed hash bound to what the code is for and whose it is."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app

from ..store import store

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_code(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def mac(*parts: str) -> str:
    """The keyed hash stored instead of a code (and of a person's store key)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def matches(stored_mac: str, length: int, typed: str, *parts: str) -> bool:
    """Whether ``typed`` is the code whose hash (over ``parts`` + the code) is stored."""
    code = normalise(typed)
    return len(code) == length and hmac.compare_digest(stored_mac, mac(*parts, code))


def take(key: str, record: dict, typed: str, *parts: str, length: int, ttl: float,
         max_tries: int) -> dict | None:
    """The stored ``record`` at ``key``, taken (used up), when ``typed`` is its code;
    None otherwise. Every try counts, matching or not, and more than ``max_tries`` kill
    the code; of two callers with the right code at once only one gets the record."""
    if store().incr(f"{key}:tries", ttl) > max_tries:
        store().delete(key)
        return None
    if not matches(record["mac"], length, typed, *parts):
        return None
    taken = store().take(key)
    return taken if isinstance(taken, dict) and taken.get("mac") == record["mac"] else None
