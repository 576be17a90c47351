"""The small interface every legacy-system connector implements.

A connector is a :class:`Source`: it can *describe* itself (kind, where it reads from with
secrets redacted, and its field mapping) and *stream* its accounts as :class:`LegacyRow`
values. Nothing here normalises the values beyond trimming whitespace: ID numbers,
phones and credit codes are validated and matched elsewhere (``idp.identity`` and the
importer/matcher).

Bad input (a missing column, an undecodable file, a row without its legacy id) never
raises a stack trace at the caller: configuration and whole-source problems raise
:class:`ConnectorError` with a readable message; row-level problems are skipped, counted
and reported on :attr:`Source.errors` as :class:`RowError` values.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: Target fields a ``[fields]`` table may map. ``legacy_id`` is required.
FIELDS: tuple[str, ...] = (
    "legacy_id", "name", "id_number", "phone", "email", "org_code", "credit_code",
    "password_hash", "password_salt", "created_at", "updated_at",
)
REQUIRED_FIELDS: tuple[str, ...] = ("legacy_id",)

#: What a source's rows describe (``[source] entity``): people, organisations, or
#: ``auto``: per row, an organisation when it has an organisation or credit code and
#: no ID number.
ENTITIES: tuple[str, ...] = ("auto", "person", "organisation")

#: How many row errors are kept verbatim on ``Source.errors`` (all are counted).
MAX_KEPT_ERRORS = 1000


class ConnectorError(ValueError):
    """Bad configuration or an unreadable source; the message is meant for an operator."""


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_json_str = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept as is
_FINGERPRINT_KEYS = tuple((f'"{name}":', name)
                          for name in sorted((*FIELDS, "source", "password_format")))


@dataclass(frozen=True)
class LegacyRow:
    """One account read from a legacy system, with the mapped values trimmed.

    ``raw`` holds the mapped source values keyed by *target* field name (after
    trimming, empty strings become ``None``), so ``raw`` is what the fingerprint covers.
    """

    source: str
    legacy_id: str
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    email: str | None = None
    org_code: str | None = None
    credit_code: str | None = None
    password_hash: str | None = None
    password_format: str | None = None
    password_salt: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    raw: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)
    #: Where the row was read (``"line 12"``, a DN, a key), for the reject report.
    where: str | None = field(default=None, compare=False, repr=False)

    def fingerprint(self) -> str:
        """SHA-256 hex over a canonical JSON of the mapped fields.

        Unchanged source row → unchanged fingerprint, so a re-run can skip it; any
        change to a mapped value (or to the password format) changes it.
        """
        # The canonical JSON (sorted keys, no spaces, UTF-8), written out directly: the
        # keys are fixed and the values are strings or null, and a re-run computes this
        # for every row it reads.
        parts = []
        for key, name in _FINGERPRINT_KEYS:
            value = getattr(self, name)
            parts.append(key + ("null" if value is None else _json_str(value)
                                if type(value) is str else _CANONICAL.encode(value)))
        data = "{" + ",".join(parts) + "}"
        return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RowError:
    """A source row that was skipped (or read but suspicious); ``where`` is e.g.
    ``"line 12"`` or a DN. ``reason`` never holds a row's values; ``legacy_id`` is the
    row's legacy id when one could be read (masked wherever it is shown)."""

    where: str
    reason: str
    legacy_id: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def clean(value: Any) -> str | None:
    """Trim a source value to a string, or ``None`` when absent or blank.

    Bytes are decoded as UTF-8 (LDAP and some SQL drivers hand them back raw);
    other scalars (ints, dates) are turned into strings; nothing else is normalised.
    """
    if type(value) is str:  # the common case (CSV, most SQL columns), first
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            value = bytes(value).hex()
    elif isinstance(value, list | tuple):
        value = value[0] if value else None
        return clean(value)
    elif hasattr(value, "isoformat"):
        value = value.isoformat()
    text = str(value).strip()
    return text or None


def redact_url(url: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:***@host/db``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0] + ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[1]}"))


class Source(ABC):
    """A legacy system's account store, read as a stream of :class:`LegacyRow`.

    Subclasses implement :meth:`_location` and :meth:`_records`; the base class maps,
    trims and validates, and keeps the row-error report. ``errors`` and
    ``error_counts`` are reset at the start of every :meth:`rows` iteration, and
    ``rows_read`` counts the rows yielded.
    """

    kind: str = "abstract"

    def __init__(self, name: str, fields: Mapping[str, str], *, trusted: bool = False,
                 password_format: str | None = None, entity: str = "auto") -> None:
        if not name or not isinstance(name, str):
            raise ConnectorError("source name must be a non-empty string")
        if entity not in ENTITIES:
            raise ConnectorError(f"source {name!r}: entity {entity!r} is not one of "
                                 f"{', '.join(ENTITIES)}")
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ConnectorError(f"source {name!r}: unknown field(s) {', '.join(unknown)}; "
                                 f"known fields are {', '.join(FIELDS)}")
        for required in REQUIRED_FIELDS:
            if not fields.get(required):
                raise ConnectorError(f"source {name!r}: [fields] must map {required!r}")
        for target, column in fields.items():
            if not isinstance(column, str) or not column.strip():
                raise ConnectorError(f"source {name!r}: field {target!r} must name a "
                                     f"source column/attribute (a non-empty string)")
        self.name = name
        self.trusted = bool(trusted)
        self.password_format = password_format
        self.entity = entity
        self.fields: Mapping[str, str] = MappingProxyType(
            {k: v.strip() for k, v in fields.items()})
        if password_format is not None:
            from idp.crypto.legacy_hashes import FORMATS

            if password_format not in FORMATS:
                # Checked here, not per row: otherwise every row's hash would be refused
                # one by one and the accounts imported without their passwords.
                raise ConnectorError(
                    f"source {name!r}: unknown password format {password_format!r}; "
                    f"known formats are {', '.join(sorted(FORMATS))}")
        self.errors: list[RowError] = []
        self.error_counts: Counter[str] = Counter()
        self.rows_read = 0
        #: Called with every :class:`RowError` as it happens (the importer's reject
        #: report); ``errors`` keeps only the first :data:`MAX_KEPT_ERRORS`.
        self.reject_sink: Callable[[RowError], None] | None = None

    # -- what subclasses provide -------------------------------------------------------

    @abstractmethod
    def _location(self) -> dict[str, Any]:
        """Where the source is, with secrets redacted."""

    @abstractmethod
    def _records(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Yield ``(where, record)`` pairs; ``record`` is keyed by source column name."""

    # -- the interface ------------------------------------------------------------------

    def total_hint(self) -> int | None:
        """About how many records a read will yield (for progress), or ``None``."""
        return None

    @property
    def error_count(self) -> int:
        return sum(self.error_counts.values())

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "trusted": self.trusted,
                "entity": self.entity, "location": self._location(),
                "fields": dict(self.fields), "password_format": self.password_format}

    def rows(self) -> Iterator[LegacyRow]:
        """Stream the source's rows; skipped rows are recorded on ``errors``."""
        self.errors = []
        self.error_counts = Counter()
        self.rows_read = 0
        mapping = tuple(self.fields.items())
        for where, record in self._records():
            values = {target: clean(record.get(column)) for target, column in mapping}
            legacy_id = values.get("legacy_id")
            if legacy_id is None:
                self._skip(where, "missing legacy id "
                                  f"(column {self.fields['legacy_id']!r} is empty)")
                continue
            self.rows_read += 1
            yield LegacyRow(source=self.name, password_format=self.password_format,
                            raw=values, where=where, **values)

    def _skip(self, where: str, reason: str, legacy_id: str | None = None) -> None:
        """Count and report a row that is not imported; the reason's text before any
        parenthesis is its category in ``error_counts``."""
        self.error_counts[reason.split(" (", 1)[0]] += 1
        error = RowError(where, reason, legacy_id)
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)
        if self.reject_sink is not None:
            self.reject_sink(error)

    def __iter__(self) -> Iterator[LegacyRow]:
        return self.rows()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
