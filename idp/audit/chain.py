"""The audit hash chain: canonical form, SM3 hash, and the verifying walk.

Canonical form
==============

Each entry's ``hash`` is the lowercase hex SM3 digest (GB/T 32905-2016) of the UTF-8
bytes of one JSON object holding exactly these nine members — every column except
``hash`` itself::

    actor, client_id, details, event, ip, prev_hash, seq, subject, ts

written as Python's ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` writes it:

* keys sorted by code point, at every level (``details`` is a nested object);
* no whitespace at all between tokens;
* non-ASCII characters as themselves (UTF-8), not ``\\uXXXX`` escapes; inside strings
  only ``"`` and ``\\`` and control characters are escaped (``\\n \\r \\t \\b \\f``,
  others as ``\\u00xx`` in lowercase hex);
* ``null`` for an absent ``subject``, ``client_id`` or ``ip``; ``details`` is always
  an object (``{}`` when empty);
* integers in plain decimal; floats in their shortest round-trip form (Python's
  ``repr``), e.g. ``"ts":1763787000.123456`` or ``"ts":1763787000.0``. ``ts`` is Unix
  seconds (UTC) rounded to whole microseconds.

``prev_hash`` is the previous entry's ``hash``; entry 1 has 64 zeros. ``seq`` starts at
1 and goes up by exactly 1.

Example::

    {"actor":"system","client_id":null,"details":{},"event":"keys.rotate","ip":null,
     "prev_hash":"0000…0000","seq":1,"subject":null,"ts":1763787000.5}

(one line in reality). Each line of ``idp audit export`` is this object with a
``"hash"`` member added in its sorted place (between ``event`` and ``ip``), so an
operator can check a line with no Python at all: delete that member and hash the rest::

    printf '%s' "$line" \\
      | sed -E 's/^(.*"event":"[^"]*"),"hash":"[0-9a-f]{64}"/\\1/' \\
      | openssl dgst -sm3

and compare with the line's ``hash``; the next line's ``prev_hash`` must equal it.
(The regular expression is greedy on purpose: the top-level ``event``/``hash`` pair is
the last one on the line, since ``details`` comes before it.)

What the chain proves
=====================

Altering, deleting, inserting or reordering entries *inside* the chain breaks it and
:func:`walk` names the first bad entry. Deleting entries from the *end* leaves a shorter
chain that is still valid, and anyone able to write the table can also rewrite the tail
and recompute its hashes. Both are caught only against a head (``seq``, ``hash``)
recorded outside the database — a SIEM that receives ``idp audit export``, or the
output of ``idp audit head`` kept elsewhere — passed as ``expected_head``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..crypto.sm3 import sm3_digest

ZERO_HASH = "0" * 64

#: The members of the canonical form, in canonical (sorted) order.
FIELDS = ("actor", "client_id", "details", "event", "ip", "prev_hash", "seq", "subject", "ts")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def canonical_bytes(entry: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: the nine :data:`FIELDS` of ``entry`` (other keys,
    such as ``hash``, are ignored) in the canonical form described above."""
    return _dumps({k: entry[k] for k in FIELDS}).encode("utf-8")


def compute_hash(entry: Mapping[str, Any]) -> str:
    """Lowercase hex SM3 of :func:`canonical_bytes`."""
    return sm3_digest(canonical_bytes(entry)).hex()


def export_line(entry: Mapping[str, Any]) -> str:
    """One JSON line for shipping: the canonical object plus ``hash`` (no newline)."""
    obj = {k: entry[k] for k in FIELDS}
    obj["hash"] = entry["hash"]
    return _dumps(obj)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the chain.

    ``count`` is the number of entries that verified before the first problem (all of
    them when ``ok``); ``first_bad_seq`` is the first entry that cannot be trusted (for
    a deletion, the first missing ``seq``); ``reason`` says what is wrong with it.
    ``head_seq``/``head_hash`` are the last entry that verified (0 and 64 zeros when
    none did) — record them elsewhere to detect truncation later. ``pending`` is the
    number of entries recorded before the check that could not be chained in time, so
    were not checked (0 normally; :func:`idp.audit.verify` logs why).
    """

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_hash: str = ZERO_HASH
    pending: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason, "head": {"seq": self.head_seq, "hash": self.head_hash},
                "pending": self.pending}


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}-{last}"


def _hashes_as(row: Mapping[str, Any], stored: str, **changes: Any) -> bool:
    """Whether ``row`` with ``changes`` applied hashes to ``stored``: tells an entry that
    was moved (renumbered, re-linked) from one whose contents were altered."""
    return compute_hash({**row, **changes}) == stored


def walk(entries: Iterable[Mapping[str, Any]], *,
         locate: Callable[[str], int | None] | None = None,
         expected_head: tuple[int, str] | None = None,
         start: tuple[int, str] = (0, ZERO_HASH)) -> VerifyResult:
    """Check ``entries`` (mappings with the nine fields and ``hash``, in ``seq`` order)
    and report the first problem. Streams: keeps only the last two hashes.

    ``locate(hash)`` (optional) returns the ``seq`` of the entry stored with that hash,
    used only to tell a reordering from other damage. ``expected_head`` is a
    (``seq``, ``hash``) recorded earlier outside the database. ``start`` is the
    (``seq``, ``hash``) just before the first entry — (0, zeros) for a whole chain, or
    the last line of an earlier export when checking a later export on its own.
    """
    prev_seq, prev_hash = start
    before_prev: str | None = None  # hash of the entry before the previous one
    count = 0

    def bad(seq: int, reason: str, verified: int) -> VerifyResult:
        return VerifyResult(False, verified, seq, reason, prev_seq, prev_hash)

    for row in entries:
        seq, stored, link = row["seq"], row["hash"], row["prev_hash"]
        intact = compute_hash(row) == stored
        want = prev_seq + 1
        if seq > want:
            return bad(want, f"{_span(want, seq - 1)} missing (deleted): entry {seq} "
                             f"follows entry {prev_seq}", count)
        if seq < want:
            return bad(seq, f"entry {seq} is out of sequence after entry {prev_seq} "
                            f"(inserted)", count)
        if link != prev_hash:
            if before_prev is not None and link == before_prev:
                return VerifyResult(
                    False, count - 1, prev_seq,
                    f"entry {prev_seq} was inserted: entry {seq} is chained directly to "
                    f"entry {prev_seq - 1}", prev_seq - 1, before_prev)
            found = locate(link) if locate is not None else None
            if found is not None and found != prev_seq:
                return bad(seq, f"entry {seq} is out of order (reordered): it was chained "
                                f"after the entry now at seq {found}, not after entry "
                                f"{prev_seq}", count)
            if prev_seq == start[0]:
                what = ("is not the first entry of the chain" if start[0] == 0 else
                        "does not continue from the given start")
                return bad(seq, f"entry {seq} {what}: its prev_hash is {link}, expected "
                                f"{prev_hash} (earlier entries deleted or entry forged)",
                           count)
            if intact:
                return VerifyResult(
                    False, count - 1, prev_seq,
                    f"entry {prev_seq} was replaced (altered and re-hashed): entry {seq} "
                    f"was chained to a different entry {prev_seq}", prev_seq - 1,
                    before_prev or ZERO_HASH)
            if _hashes_as(row, stored, seq=seq + 1):
                return bad(seq, f"entry {seq} was deleted and the later entries renumbered: "
                                f"the entry now at seq {seq} was entry {seq + 1}", count)
            return bad(seq, f"entry {seq} does not link to entry {prev_seq} and its hash "
                            f"does not match its contents (altered or moved)", count)
        if not intact:
            if before_prev is not None and _hashes_as(row, stored, seq=seq - 1,
                                                      prev_hash=before_prev):
                return VerifyResult(
                    False, count - 1, prev_seq,
                    f"entry {prev_seq} was inserted: the entry now at seq {seq} was entry "
                    f"{prev_seq}, chained to entry {prev_seq - 1}", prev_seq - 1, before_prev)
            return bad(seq, f"entry {seq} was altered: its stored hash does not match its "
                            f"contents", count)
        if expected_head is not None and seq == expected_head[0] and stored != expected_head[1]:
            return bad(seq, f"entry {seq} differs from the recorded head hash (the chain was "
                            f"rewritten up to here)", count)
        count += 1
        before_prev, prev_seq, prev_hash = prev_hash, seq, stored

    if expected_head is not None and prev_seq < expected_head[0]:
        return bad(prev_seq + 1,
                   f"chain truncated: the last entry is {prev_seq} but the recorded head is "
                   f"entry {expected_head[0]} ({_span(prev_seq + 1, expected_head[0])} "
                   f"deleted)", count)
    return VerifyResult(True, count, None, None, prev_seq, prev_hash)
