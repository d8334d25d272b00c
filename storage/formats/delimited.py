"""CSV and TSV: a header line, then one row per record (a quoted field may span lines)."""

from __future__ import annotations

import csv
import io
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from thresher.storage.formats.base import Counts, FormatReader, Options, Raw, Reject, escape_bytes, has_bad_utf8

HEADER_BYTES = 1 << 20  # read to find the header line


class Delimited(FormatReader):
    """CSV rows; a row that fails to parse costs only its own line when it ran over several.

    An unterminated quote makes the parser read on across lines. So when a record that spans
    several physical lines fails (a CSV error, or the wrong number of fields), only its first
    line is rejected and parsing resumes at the next line. A quote that a later line happens to
    close into a record with the right number of fields cannot be told from a multi-line field.
    An empty field is None (no value).
    """

    name = "csv"
    extensions = (".csv", ".tsv")

    def read(self, path: Path, options: Options, counts: Counts) -> Iterator[Raw | Reject]:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            yield from parse(handle, path, options.resolved_delimiter(path), counts)

    def columns(self, path: Path, options: Options) -> set[str]:
        """The header's names (the rows are not read: a bad row cannot hide a column)."""
        with path.open("rb") as handle:
            head = handle.read(HEADER_BYTES).decode("utf-8-sig", "replace")
        return set(next(csv.reader(io.StringIO(head, newline=""), delimiter=options.resolved_delimiter(path)), []))


def parse(handle: Any, path: Path, delimiter: str, counts: Counts) -> Iterator[Raw | Reject]:
    """The records of an open CSV file, read line by line (memory does not grow with the file)."""
    consumed: list[str] = []  # the physical lines of the record being parsed
    pending: deque[str] = deque()  # lines handed back by a resynchronisation, read again first
    position = 0  # physical lines handed to the parser so far

    def feed() -> Iterator[str]:
        nonlocal position
        while True:
            line = pending.popleft() if pending else handle.readline()
            if not line:
                return
            position += 1
            consumed.append(line)
            yield line

    def reader() -> Iterator[list[str]]:
        return csv.reader(feed(), delimiter=delimiter, strict=True)

    csv.field_size_limit(sys.maxsize)  # max_field_bytes is enforced by ingest, with a reject
    records = reader()
    header: list[str] | None = None
    while True:
        start = position + 1
        consumed.clear()
        error: str | None = None
        try:
            record = next(records)
        except StopIteration:
            return
        except csv.Error as exc:
            error, record = f"CSV error: {exc}", []
        broken = error is not None
        raw = "".join(consumed)
        if header is not None and error is None and record and len(record) != len(header):
            error = f"expected {len(header)} fields as in the header, got {len(record)}"
        if broken and len(consumed) > 1 and header is not None:
            # Resynchronise: reject the first line alone and parse again from the next one. Only after a
            # CSV error: a record that parsed, across lines, with the wrong field count is one reject.
            first, rest = consumed[0], consumed[1:]
            pending.extendleft(reversed(rest))
            position = start
            records = reader()
            yield Reject(str(path), start, "unparseable", f"{error} (a quote left open? this row spanned lines "
                         f"{start}-{start + len(consumed) - 1}; parsing resumed at line {start + 1})",
                         escape_bytes(first))
            continue
        if error is not None and header is not None:
            yield Reject(str(path), start, "unparseable", error, escape_bytes(raw))
            continue
        if header is None:
            if error is not None:
                raise ValueError(f"The header of '{path}' cannot be parsed: {error}")
            header = record
            if any(has_bad_utf8(h) for h in header):
                raise ValueError(f"The header of '{path}' is not valid UTF-8: {escape_bytes(raw)!r}")
            continue
        if not record:
            counts.blank_lines += 1
            continue
        if any(has_bad_utf8(value) for value in record):
            yield Reject(str(path), start, "invalid_utf8", "a field is not valid UTF-8", escape_bytes(raw))
            continue
        yield Raw(start, {name: (value if value != "" else None) for name, value in zip(header, record)}, raw)
