"""CSV and TSV exports from legacy systems (UTF-8, UTF-8 with BOM, GBK, GB18030).

The file is streamed through :mod:`csv` one row at a time; its first row is the header.
Rows without a legacy id are skipped and reported on ``Source.errors`` (see
:mod:`connectors.base`); a missing *column*, an undecodable byte or a malformed file
stops the read with a :class:`~connectors.base.ConnectorError` naming the line.

Encoding ``"auto"``:

1. a UTF-8 byte-order mark → ``utf-8-sig`` (the BOM is dropped, so it never ends up
   glued to the first header name);
2. otherwise the first chunk (256 KiB) is decoded as strict UTF-8 — an incremental
   decoder, so a character cut at the chunk edge is not a false alarm; success → UTF-8;
3. otherwise ``gb18030``. GB 18030 is a strict superset of GBK and GB 2312: every byte
   sequence a GBK exporter writes decodes to the same characters, and GB 18030 also
   maps every Unicode code point (four-byte sequences), so rare name characters (生僻字)
   that GBK cannot represent — or that Windows exporters emitted as GB 18030 anyway —
   still decode instead of failing the import. Decoding GBK data as GBK gains nothing.

Non-UTF-8 data that happens to be valid UTF-8 in the first chunk is vanishingly rare for
Chinese text (GBK double bytes almost never form valid UTF-8 sequences); if it happens,
the read stops with an error asking for an explicit ``encoding``.
"""

from __future__ import annotations

import codecs
import csv
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from connectors.base import ConnectorError, Source

ENCODINGS = ("auto", "utf-8", "utf-8-sig", "gbk", "gb18030")
DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
SNIFF_BYTES = 256 * 1024


def detect_encoding(path: Path) -> str:
    """The encoding ``"auto"`` resolves to for ``path`` (see the module docstring)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise ConnectorError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


class CsvSource(Source):
    kind = "csv"

    def __init__(self, name: str, fields: Mapping[str, str], *, path: str | Path,
                 encoding: str = "auto", delimiter: str | None = None,
                 trusted: bool = False, password_format: str | None = None,
                 entity: str = "auto") -> None:
        super().__init__(name, fields, trusted=trusted, password_format=password_format,
                         entity=entity)
        self.path = Path(path)
        encoding = encoding.lower().replace("_", "-")
        if encoding == "utf8":
            encoding = "utf-8"
        if encoding not in ENCODINGS:
            raise ConnectorError(f"source {name!r}: unsupported encoding {encoding!r}; "
                                 f"use one of {', '.join(ENCODINGS)}")
        self.encoding = encoding
        if delimiter is None:
            delimiter = "\t" if self.path.suffix.lower() in (".tsv", ".tab") else ","
        if delimiter not in DELIMITERS:
            raise ConnectorError(f"source {name!r}: unsupported delimiter {delimiter!r}; "
                                 "use one of ',', '\\t', ';', '|'")
        self.delimiter = delimiter

    def _location(self) -> dict[str, Any]:
        return {"path": str(self.path), "encoding": self.encoding,
                "delimiter": DELIMITERS[self.delimiter]}

    def resolved_encoding(self) -> str:
        if self.encoding == "auto":
            return detect_encoding(self.path)
        # A BOM is never data: accept UTF-8 files with or without one.
        return "utf-8-sig" if self.encoding == "utf-8" else self.encoding

    def total_hint(self) -> int | None:
        """Lines after the header (blank lines included): a count of newline bytes,
        which is exact for every supported encoding (see :class:`_DecodedLines`)."""
        try:
            with open(self.path, "rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except OSError:
            return None
        return max(lines - 1, 0)

    def _records(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        encoding = self.resolved_encoding()
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise ConnectorError(f"source {self.name!r}: cannot read {self.path}: "
                                 f"{exc.strerror or exc}") from None
        with fh:
            lines = _DecodedLines(fh, encoding)
            reader = csv.reader(lines, delimiter=self.delimiter, strict=False)
            try:
                header = self._header(reader, encoding)
                if header is None:
                    return
                yield from self._checked(reader, lines, header)
            except UnicodeDecodeError as exc:
                raise ConnectorError(self._decode_message(lines.number, encoding,
                                                          exc)) from None
            except csv.Error as exc:
                raise ConnectorError(f"source {self.name!r}: {self.path} line "
                                     f"{lines.number}: malformed CSV: {exc}") from None
            except OSError as exc:
                raise ConnectorError(f"source {self.name!r}: reading {self.path} failed "
                                     f"at line {lines.number}: {exc.strerror or exc}") from None

    def _checked(self, reader: Any, lines: _DecodedLines,
                 header: list[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Records with exactly the header's number of fields; the others are rejected
        (reported on ``errors``), never padded or cut: a missing or extra delimiter
        shifts every later value into the wrong column (a phone read as an ID number).

        A quote that is never closed makes :mod:`csv` read every following line into
        one value. A record that spans lines *and* has the wrong number of fields is
        that: its first line is rejected and the lines after it are read again, so one
        stray quote costs one row, not the rest of the file. A record that spans lines
        with the right number of fields is a quoted value with a line break: kept."""
        width = len(header)
        id_column = header.index(self.fields["legacy_id"])
        lines.mark()
        for row in reader:
            span = lines.mark()
            first, last = span[0][0], span[-1][0]
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) == width:
                yield f"line {first}", dict(zip(header, row, strict=True))
                continue
            legacy_id = row[id_column].strip() if id_column < len(row) else ""
            legacy_id = legacy_id if legacy_id and "\n" not in legacy_id else None
            if last > first:
                self._skip(f"line {first}", f"unterminated quote (lines {first}-{last} "
                                            f"would be one record; line {first} skipped, "
                                            f"the lines after it read again)", legacy_id)
                lines.push_back(span[1:])
            else:
                self._skip(f"line {first}", f"wrong number of fields ({len(row)}; the header "
                                            f"has {width})", legacy_id)

    def _header(self, reader: Any, encoding: str) -> list[str] | None:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                header = [cell.strip() for cell in row]
                break
        else:
            return None  # an empty file has no rows
        missing = [col for col in dict.fromkeys(self.fields.values()) if col not in header]
        if missing:
            hint = ""
            if self.delimiter == "," and len(header) == 1 and "\t" in header[0]:
                hint = " (the file looks tab-separated: set delimiter = \"\\t\")"
            raise ConnectorError(
                f"source {self.name!r}: {self.path} has no column(s) "
                f"{', '.join(repr(c) for c in missing)}; its header has "
                f"{', '.join(repr(c) for c in header[:30])} (read as {encoding}){hint}")
        return header

    def _decode_message(self, line: int, encoding: str, exc: UnicodeDecodeError) -> str:
        advice = ("set encoding = \"gb18030\" (or the file's real encoding) explicitly"
                  if encoding.startswith("utf-8") else
                  "check the file's encoding (try \"auto\", \"utf-8\" or \"gb18030\")")
        return (f"source {self.name!r}: {self.path} is not valid {encoding} near line {line} "
                f"(byte {exc.object[exc.start:exc.start + 4]!r}): {advice}")


class _DecodedLines:
    """Decode a binary file line by line, keeping the physical line number exact.

    Splitting the *bytes* on ``\\n`` is safe for every supported encoding: in UTF-8 and
    in GBK/GB 18030 the byte 0x0A only ever encodes LF (multi-byte trail bytes are
    0x30-0x39, 0x40-0xFE or 0x80-0xBF). A decoding error thus points at its own line.

    :meth:`mark` returns the ``(number, text)`` lines handed out since the last mark
    (the lines of one CSV record); :meth:`push_back` hands lines out again, in order.
    """

    def __init__(self, fh: Any, encoding: str) -> None:
        self._fh = fh
        self._bom = encoding == "utf-8-sig"
        self._encoding = "utf-8" if self._bom else encoding
        self.number = 0
        self._taken: list[tuple[int, str]] = []
        self._again: deque[tuple[int, str]] = deque()
        self._decode = codecs.getdecoder(self._encoding)

    def mark(self) -> list[tuple[int, str]]:
        taken, self._taken = self._taken, []
        return taken or [(self.number, "")]

    def push_back(self, lines: list[tuple[int, str]]) -> None:
        self._again.extendleft(reversed(lines))

    # An iterator object, not a generator: a generator that reached the end of the file
    # could not hand out lines pushed back after it.
    def __iter__(self) -> _DecodedLines:
        return self

    def __next__(self) -> str:
        if self._again:
            number, text = self._again.popleft()
        else:
            raw = self._fh.readline()
            if not raw:
                raise StopIteration
            self.number += 1
            if self._bom and self.number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            number, text = self.number, self._decode(raw, "strict")[0]
        self._taken.append((number, text))
        return text
