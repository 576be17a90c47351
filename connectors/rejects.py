"""The reject report of an import: every row not imported as read, one CSV line each.

A row lands here when the source could not read it (wrong number of fields, an
unterminated quote, no legacy id), when it was read but refused (an invalid ID number or
credit code), when its legacy id came earlier in the same run, or when it was imported
without its password because the hash was unusable. Each line has where the row was
(``line 12``), its legacy id, a category and the reason. Nothing personal is written in
clear: legacy ids and reasons go through the logs' masking (an ID number or a phone
inside a legacy id is masked; the line number is how the operator finds the row).

The file is opened on the first reject only (a clean source leaves no file behind) and
created readable by its owner alone. Counts are kept whether or not there is a file.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from idp.identity.masking import mask_name, mask_text

HEADER = ("where", "legacy_id", "category", "reason")
# An LDAP row's "where" is its DN, whose cn/sn/displayName are often the person's name.
_DN_NAME = re.compile(r"(?i)\b(cn|sn|givenName|displayName)=((?:\\.|[^,+\\])+)")


def mask_where(where: str) -> str:
    return mask_text(_DN_NAME.sub(lambda m: f"{m.group(1)}={mask_name(m.group(2))}", where))


class RejectReport:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.counts: Counter[str] = Counter()
        self._fh: Any = None
        self._writer: Any = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, where: str | None, category: str, reason: str,
            legacy_id: str | None = None) -> None:
        self.counts[category] += 1
        if self.path is None:
            return
        if self._writer is None:
            self._open()
        self._writer.writerow([mask_where(where or ""), mask_text(legacy_id) if legacy_id else "",
                               category, mask_text(reason)])

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # UTF-8 with a BOM: the spreadsheet programs operators open it with then show
        # the Chinese text instead of mojibake.
        self._fh = open(fd, "w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(HEADER)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def written(self) -> str | None:
        """The report's path when it holds at least one row."""
        return str(self.path) if self.path is not None and self.total else None
