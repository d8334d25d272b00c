"""Ingest CSV, JSONL, Parquet and WRENCH JSON files into the ``items`` table.

Every input row ends up either as an item or as a row of ``rejects`` with a reason code, so
nothing is dropped silently. Item ids are stable (a user id column, the WRENCH key, or a hash
of the row's content), which makes re-ingesting the same file a no-op.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import logging
import re
import sys
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from thresher.storage.connection import registered, transaction
import pyarrow.parquet as pq
from pydantic import Field

from thresher.core.classes import parse_class
from thresher.core.config import StageConfig
from thresher.core.stages import Stage, StageContext, file_state

logger = logging.getLogger(__name__)

Format = Literal["csv", "jsonl", "parquet", "wrench"]
RejectReason = Literal[
    "unparseable",  # the line/record is not valid CSV/JSON, or has the wrong number of fields
    "invalid_utf8",  # the bytes are not UTF-8
    "invalid_unicode",  # a string holds a lone surrogate (a JSON "\\ud800" escape: half an emoji)
    "control_character",  # a field (or column name) holds a NUL character
    "missing_text",  # no text column, or it is empty
    "wrong_type",  # a mapped column has a value of the wrong type (or an unknown class)
    "oversize_field",  # a field is larger than max_field_bytes
    "duplicate_row",  # the same row (same item id, same content) appeared earlier in the batch
    "conflicting_id",  # an item with this id but different content exists already
]
REJECT_REASONS: tuple[str, ...] = RejectReason.__args__  # type: ignore[attr-defined]

_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "wrench",
}


class ColumnMap(StageConfig):
    """Which source columns hold the text, the labels, the id and the split.

    Nested JSON fields are addressed with dots (``data.text``). Columns not named here are
    kept in ``items.extra``.
    """

    text: str = "text"
    label: str | None = None
    gold: str | None = None
    id: str | None = None
    split: str | None = None


class SourceConfig(StageConfig):
    """One input: a file or glob, its format and how its columns map onto items."""

    path: str
    format: Format | None = None
    dataset: str = Field(min_length=1)
    split: str | None = None
    columns: ColumnMap = ColumnMap()
    delimiter: str = Field(",", min_length=1, max_length=1)
    max_field_bytes: int = Field(1_000_000, ge=1)
    lf_names: list[str] | None = None  # WRENCH only: names of the weak_labels columns
    # Without an id column: "content" hashes the row (exact repeats become duplicate_row rejects);
    # "line" uses the file and line, keeping repeated rows as items of their own.
    row_ids: Literal["content", "line"] = "content"

    def resolved_format(self, path: Path) -> Format:
        """The configured format, or the one implied by the file extension."""
        if self.format is not None:
            return self.format
        try:
            return _EXTENSIONS[path.suffix.lower()]
        except KeyError:
            raise ValueError(
                f"The 'format' of source '{self.path}' cannot be inferred from the extension "
                f"'{path.suffix}'. Set format to one of {sorted(set(_EXTENSIONS.values()))}."
            ) from None


class IngestConfig(StageConfig):
    """The ingest stage: the sources and the class names labels are mapped onto."""

    sources: list[SourceConfig] = Field(min_length=1)
    classes: list[str] = Field(min_length=2)


@dataclass(frozen=True)
class Reject:
    """One input row that could not become an item."""

    source: str
    line: int
    reason: str
    detail: str
    raw: str


@dataclass
class _Raw:
    """One parsed input row before validation: its line and its fields by name."""

    line: int
    fields: dict[str, Any]
    raw: str
    votes: list[int] | None = None


@dataclass
class SourceSummary:
    """What happened to the rows of one source file."""

    source: str
    rows: int = 0
    new_items: int = 0
    already_present: int = 0
    rejected: Counter = field(default_factory=Counter)
    blank_lines: int = 0

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())


@dataclass
class IngestSummary:
    """Counts for every source of one ingest run."""

    sources: list[SourceSummary]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sources)

    @property
    def new_items(self) -> int:
        return sum(s.new_items for s in self.sources)

    @property
    def already_present(self) -> int:
        return sum(s.already_present for s in self.sources)

    @property
    def rejected(self) -> Counter:
        total: Counter = Counter()
        for s in self.sources:
            total.update(s.rejected)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "new_items": self.new_items,
            "already_present": self.already_present,
            "rejected": dict(self.rejected),
            "sources": [
                {
                    "source": s.source,
                    "rows": s.rows,
                    "new_items": s.new_items,
                    "already_present": s.already_present,
                    "rejected": dict(s.rejected),
                    "blank_lines": s.blank_lines,
                }
                for s in self.sources
            ],
        }


def _escape_bytes(text: str) -> str:
    """Make text decoded with surrogateescape storable, showing bad bytes as ``\\xNN`` (and any other
    lone surrogate as ``\\udNNN``)."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def _unicode_problem(value: Any, name: str) -> tuple[str, str] | None:
    """(reason, detail) if a string in ``value`` (keys included, nested JSON too) holds a lone
    surrogate or a NUL; None if every string can be stored as it is."""
    if isinstance(value, str):
        match = _UNSTORABLE.search(value)
        if match is None:
            return None
        char = match.group()
        if char == "\x00":
            return "control_character", f"field '{name}' holds a NUL character at position {match.start()}"
        return "invalid_unicode", (f"field '{name}' holds a lone surrogate {char.encode('unicode_escape').decode()} "
                                   f"at position {match.start()} (half of a character)")
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _unicode_problem(key, f"{name}.{key!r} (a key)" if name else f"{key!r} (a column name)")
            problem = problem or _unicode_problem(item, f"{name}.{key}" if name else str(key))
            if problem:
                return problem
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _unicode_problem(item, f"{name}[{index}]")
            if problem:
                return problem
    return None


def _has_bad_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "surrogateescape")


def _iter_csv(path: Path, config: SourceConfig, summary: SourceSummary) -> Iterator[_Raw | Reject]:
    """CSV rows; a row that fails to parse costs only its own line when it ran over several.

    An unterminated quote makes the parser read on across lines. So when a record that spans
    several physical lines fails (a CSV error, or the wrong number of fields), only its first
    line is rejected and parsing resumes at the next line. A quote that a later line happens to
    close into a record with the right number of fields cannot be told from a multi-line field.
    """
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        yield from _parse_csv(handle, path, config, summary)


def _parse_csv(handle: Any, path: Path, config: SourceConfig, summary: SourceSummary) -> Iterator[_Raw | Reject]:
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
        return csv.reader(feed(), delimiter=config.delimiter, strict=True)

    csv.field_size_limit(sys.maxsize)
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
        raw = "".join(consumed)
        if header is not None and error is None and record and len(record) != len(header):
            error = f"expected {len(header)} fields as in the header, got {len(record)}"
        if error is not None and len(consumed) > 1 and header is not None:
            # Resynchronise: reject the first line alone and parse again from the next one.
            first, rest = consumed[0], consumed[1:]
            pending.extendleft(reversed(rest))
            position = start
            records = reader()
            yield Reject(str(path), start, "unparseable", f"{error} (a quote left open? this row spanned lines "
                         f"{start}-{start + len(consumed) - 1}; parsing resumed at line {start + 1})",
                         _escape_bytes(first))
            continue
        if error is not None and header is not None:
            yield Reject(str(path), start, "unparseable", error, _escape_bytes(raw))
            continue
        if header is None:
            if error is not None:
                raise ValueError(f"The header of '{path}' cannot be parsed: {error}")
            header = record
            if any(_has_bad_utf8(h) for h in header):
                raise ValueError(f"The header of '{path}' is not valid UTF-8: {_escape_bytes(raw)!r}")
            continue
        if not record:
            summary.blank_lines += 1
            continue
        if any(_has_bad_utf8(value) for value in record):
            yield Reject(str(path), start, "invalid_utf8", "a field is not valid UTF-8", _escape_bytes(raw))
            continue
        yield _Raw(start, {name: (value if value != "" else None) for name, value in zip(header, record)}, raw)


def _iter_jsonl(path: Path, config: SourceConfig, summary: SourceSummary) -> Iterator[_Raw | Reject]:
    with path.open("rb") as handle:
        for number, line_bytes in enumerate(handle, start=1):
            if number == 1 and line_bytes.startswith(b"\xef\xbb\xbf"):
                line_bytes = line_bytes[3:]
            try:
                line = line_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = line_bytes.decode("utf-8", "backslashreplace")
                yield Reject(str(path), number, "invalid_utf8", str(exc), raw)
                continue
            if not line.strip():
                summary.blank_lines += 1
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Reject(str(path), number, "unparseable", f"JSON error: {exc}", line)
                continue
            if not isinstance(obj, dict):
                detail = f"expected a JSON object, got {type(obj).__name__}"
                yield Reject(str(path), number, "unparseable", detail, line)
                continue
            yield _Raw(number, obj, line.rstrip("\r\n"))


def _iter_parquet(path: Path, config: SourceConfig, summary: SourceSummary) -> Iterator[_Raw | Reject]:
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
        for row in batch.to_pylist():
            number += 1
            yield _Raw(number, row, json.dumps(row, default=str, ensure_ascii=False))


def _iter_wrench(path: Path, config: SourceConfig, summary: SourceSummary) -> Iterator[_Raw | Reject]:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Reject(str(path), 0, "unparseable", f"not a WRENCH JSON file: {exc}", _escape_bytes(text))
        return
    if not isinstance(data, dict):
        detail = f"a WRENCH file is a JSON object keyed by index, got {type(data).__name__}"
        yield Reject(str(path), 0, "unparseable", detail, _escape_bytes(text))
        return
    for position, (key, entry) in enumerate(data.items(), start=1):
        line = int(key) if str(key).isdigit() else position
        raw = json.dumps({key: entry}, ensure_ascii=False)
        if not isinstance(entry, dict) or not isinstance(entry.get("data", {}), dict):
            yield Reject(str(path), line, "unparseable", "a WRENCH entry is an object with 'data'", _escape_bytes(raw))
            continue
        votes = entry.get("weak_labels")
        if votes is not None and not (isinstance(votes, list) and all(type(v) is int for v in votes)):
            yield Reject(str(path), line, "wrong_type", "'weak_labels' must be a list of ints", _escape_bytes(raw))
            continue
        fields = {f"data.{k}": v for k, v in entry.get("data", {}).items()}
        fields.update({k: v for k, v in entry.items() if k not in ("data", "weak_labels")})
        fields["__key__"] = str(key)
        yield _Raw(line, fields, raw, votes)


_READERS = {"csv": _iter_csv, "jsonl": _iter_jsonl, "parquet": _iter_parquet, "wrench": _iter_wrench}


def _lookup(fields: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Find a column by name, or a nested JSON field by dotted path."""
    if name in fields:
        return True, fields[name]
    head, _, rest = name.partition(".")
    if rest and isinstance(fields.get(head), dict):
        return _lookup(fields[head], rest)
    return False, None


def _content_hash(text: str, label: int | None, gold: int | None, extra: str) -> str:
    payload = json.dumps([text, label, gold, extra], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _validate(
    row: _Raw, path: Path, fmt: Format, config: SourceConfig, classes: list[str]
) -> dict[str, Any] | Reject:
    columns = config.columns
    source = str(path)
    problem = _unicode_problem(row.fields, "")
    if problem is not None:
        return Reject(source, row.line, problem[0], problem[1], _escape_bytes(row.raw))
    for name, value in row.fields.items():
        size = len(value.encode("utf-8", "surrogateescape")) if isinstance(value, str) else 0
        if size > config.max_field_bytes:
            detail = f"field '{name}' has {size} bytes, more than max_field_bytes={config.max_field_bytes}"
            return Reject(source, row.line, "oversize_field", detail, _escape_bytes(row.raw))
    text_column = "data.text" if fmt == "wrench" and columns.text == "text" else columns.text
    found, text = _lookup(row.fields, text_column)
    if not found:
        available = sorted(row.fields)
        detail = f"no text column '{text_column}'; available columns: {available}"
        return Reject(source, row.line, "missing_text", detail, row.raw)
    if text is None or (isinstance(text, str) and not text.strip()):
        return Reject(source, row.line, "missing_text", f"column '{text_column}' is empty", row.raw)
    if not isinstance(text, str):
        detail = f"column '{text_column}' must be a string, got {type(text).__name__}"
        return Reject(source, row.line, "wrong_type", detail, row.raw)
    if _has_bad_utf8(text):
        return Reject(source, row.line, "invalid_utf8", "text is not valid UTF-8", _escape_bytes(row.raw))

    gold_column = "label" if fmt == "wrench" and columns.gold is None and columns.label is None else columns.gold
    parsed: dict[str, int | None] = {}
    for role, name in (("label", columns.label), ("gold", gold_column)):
        parsed[role] = None
        if name is None:
            continue
        try:
            parsed[role] = parse_class(_lookup(row.fields, name)[1], classes)
        except ValueError as exc:
            return Reject(source, row.line, "wrong_type", f"column '{name}': {exc}", row.raw)

    split = config.split
    if columns.split is not None:
        split = _lookup(row.fields, columns.split)[1]
        split = None if split is None else str(split)
    elif split is None and fmt == "wrench":
        split = path.stem

    mapped = {c for c in (text_column, columns.label, gold_column, columns.id, columns.split) if c}
    extra = {k: v for k, v in row.fields.items() if k not in mapped and k != "__key__"}
    extra_json = json.dumps(extra, default=str, ensure_ascii=False, sort_keys=True)

    if columns.id is not None:
        found, user_id = _lookup(row.fields, columns.id)
        if not found or user_id is None or str(user_id).strip() == "":
            return Reject(source, row.line, "wrong_type", f"id column '{columns.id}' is empty", row.raw)
        item_id = f"{config.dataset}:{user_id}"
    elif fmt == "wrench":
        item_id = f"{config.dataset}:{split}:{row.fields['__key__']}"
    elif config.row_ids == "line":
        item_id = f"{config.dataset}:{path.name}:{row.line}"
    else:
        digest = _content_hash(text, parsed["label"], parsed["gold"], extra_json)
        item_id = f"{config.dataset}:{digest[:20]}"
    return {
        "item_id": item_id,
        "dataset": config.dataset,
        "split": split,
        "text": text,
        "label": parsed["label"],
        "gold": parsed["gold"],
        "extra": extra_json,
        "source": source,
        "source_line": row.line,
        "content_hash": _content_hash(text, parsed["label"], parsed["gold"], extra_json),
        "votes": row.votes,
        "raw": row.raw,
    }


def expand_paths(config: SourceConfig) -> list[Path]:
    """The files a source names, sorted; a pattern that matches nothing is an error."""
    matches = sorted(Path(p) for p in glob.glob(config.path, recursive=True))
    if not matches:
        raise FileNotFoundError(f"The source path '{config.path}' matches no file.")
    return matches


class SeenInMemory:
    """The rows of a file seen so far, as an (item id -> content hash, line) map: for small files."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int]] = {}

    def earlier(self, rows: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
        """Of ``rows``, those whose id an earlier batch had: id -> (that row's content hash, line)."""
        return {r["item_id"]: self._seen[r["item_id"]] for r in rows if r["item_id"] in self._seen}

    def add(self, rows: list[dict[str, Any]]) -> None:
        self._seen.update((r["item_id"], (r["content_hash"], r["source_line"])) for r in rows)


class SeenInDatabase:
    """The rows of a file seen so far, in a temporary DuckDB table: memory does not grow with the file
    (DuckDB spills to disk), so a file of any length ingests in bounded memory."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        con.execute("CREATE OR REPLACE TEMP TABLE _file_rows (item_id VARCHAR, content_hash VARCHAR, line BIGINT)")

    @staticmethod
    def _table(rows: list[dict[str, Any]]) -> pa.Table:
        return pa.table({"item_id": pa.array([r["item_id"] for r in rows], pa.string()),
                         "content_hash": pa.array([r["content_hash"] for r in rows], pa.string()),
                         "line": pa.array([r["source_line"] for r in rows], pa.int64())})

    def earlier(self, rows: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
        with registered(self._con, _batch_rows=self._table(rows)):
            found = self._con.execute("SELECT f.item_id, f.content_hash, f.line FROM _batch_rows b "
                                      "JOIN _file_rows f USING (item_id)").fetchall()
        return {item_id: (content_hash, line) for item_id, content_hash, line in found}

    def add(self, rows: list[dict[str, Any]]) -> None:
        with registered(self._con, _batch_rows=self._table(rows)):
            self._con.execute("INSERT INTO _file_rows SELECT item_id, content_hash, line FROM _batch_rows")

    def close(self) -> None:
        self._con.execute("DROP TABLE IF EXISTS _file_rows")


def _repeat(row: dict[str, Any], previous: tuple[str, int]) -> Reject:
    """The reject of a row whose id an earlier row of its file had: same content or not."""
    reason = "duplicate_row" if previous[0] == row["content_hash"] else "conflicting_id"
    detail = f"item id '{row['item_id']}' already seen at line {previous[1]}"
    return Reject(row["source"], row["source_line"], reason, detail, row["raw"])


def iter_parsed(path: Path, config: SourceConfig, classes: list[str], summary: SourceSummary, rejects: list[Reject],
                *, batch_rows: int = 50_000, seen: SeenInMemory | SeenInDatabase | None = None
                ) -> Iterator[list[dict[str, Any]]]:
    """Parse and validate one file, yielding its rows (one per item id) in batches of ``batch_rows``.

    Rejects are appended to ``rejects`` and counts to ``summary`` as the file is read. A repeated id
    is a ``duplicate_row`` (same content) or ``conflicting_id`` reject of the later row; ``seen``
    remembers the earlier batches' ids (in memory by default; :class:`SeenInDatabase` for big files).
    """
    fmt = config.resolved_format(path)
    seen = seen if seen is not None else SeenInMemory()
    batch: dict[str, dict[str, Any]] = {}

    def flush() -> list[dict[str, Any]]:
        rows = list(batch.values())
        earlier = seen.earlier(rows)
        for row in rows:
            if row["item_id"] in earlier:
                rejects.append(_repeat(row, earlier[row["item_id"]]))
        kept = [row for row in rows if row["item_id"] not in earlier]
        seen.add(kept)
        batch.clear()
        return kept

    for parsed in _READERS[fmt](path, config, summary):
        summary.rows += 1
        if isinstance(parsed, Reject):
            rejects.append(parsed)
            continue
        try:
            row = _validate(parsed, path, fmt, config, classes)
        except Exception as exc:  # no input row may fail its file: it is a reject with the reason
            detail = f"thresher could not process this row ({type(exc).__name__}: {exc})"
            row = Reject(str(path), parsed.line, "unparseable", _escape_bytes(detail), _escape_bytes(parsed.raw))
        if isinstance(row, Reject):
            rejects.append(row)
            continue
        previous = batch.get(row["item_id"])
        if previous is not None:
            rejects.append(_repeat(row, (previous["content_hash"], previous["source_line"])))
            continue
        batch[row["item_id"]] = row
        if len(batch) >= batch_rows:
            yield flush()
    if batch:
        yield flush()


def parse_file(path: Path, config: SourceConfig, classes: list[str]) -> tuple[list[dict[str, Any]], list[Reject], SourceSummary]:
    """Parse and validate one file without touching a database: its rows (one per item id), its
    rejects with reasons, and the counts."""
    summary = SourceSummary(source=str(path))
    rejects: list[Reject] = []
    rows = [row for batch in iter_parsed(path, config, classes, summary, rejects) for row in batch]
    return rows, rejects, summary


def read_source(config: SourceConfig, classes: list[str]) -> list[dict[str, Any]]:
    """Every row of a source's files, for data that is used but not ingested (a selection target).

    A bad row is an error naming its file, line and reason: nothing is dropped silently. An exact
    repeat of a row (same id, same content) is read once, as ingest would.
    """
    rows: list[dict[str, Any]] = []
    for path in expand_paths(config):
        good, rejects, _ = parse_file(path, config, classes)
        rejects = [r for r in rejects if r.reason != "duplicate_row"]
        if rejects:
            shown = "; ".join(f"{r.source}:{r.line} {r.reason} ({r.detail})" for r in rejects[:5])
            raise ValueError(f"{len(rejects)} row(s) of '{path}' cannot be read: {shown}")
        rows.extend(good)
    return rows


def ingest_file(
    con: duckdb.DuckDBPyConnection, path: Path, config: SourceConfig, classes: list[str], *,
    batch_rows: int = 50_000,
) -> SourceSummary:
    """Parse, validate and load one file, ``batch_rows`` rows at a time; rejects go to ``rejects``.

    Idempotent. The caller owns the transaction, so a failure leaves the database as it was.
    """
    summary = SourceSummary(source=str(path))
    rejects: list[Reject] = []
    seen = SeenInDatabase(con)
    try:
        for rows in iter_parsed(path, config, classes, summary, rejects, batch_rows=batch_rows, seen=seen):
            _load_batch(con, path, rows, rejects, summary)
            _store_source_votes(con, rows, config)
    finally:
        seen.close()
    if rejects:
        con.executemany(
            "INSERT INTO rejects (source, line, reason, detail, raw) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(r.source, r.line, r.reason, r.detail, r.raw) for r in rejects],
        )
    summary.rejected = Counter(r.reason for r in rejects)
    return summary


def _load_batch(con: duckdb.DuckDBPyConnection, path: Path, rows: list[dict[str, Any]], rejects: list[Reject],
                summary: SourceSummary) -> None:
    """Insert one batch of a file's rows: new ids get the next item_seq; changed content is a reject."""
    good = {r["item_id"]: r for r in rows}
    batch = pa.table(
        {
            "item_id": pa.array([r["item_id"] for r in rows], pa.string()),
            "dataset": pa.array([r["dataset"] for r in rows], pa.string()),
            "split": pa.array([r["split"] for r in rows], pa.string()),
            "text": pa.array([r["text"] for r in rows], pa.string()),
            "label": pa.array([r["label"] for r in rows], pa.int32()),
            "gold": pa.array([r["gold"] for r in rows], pa.int32()),
            "extra": pa.array([r["extra"] for r in rows], pa.string()),
            "source": pa.array([r["source"] for r in rows], pa.string()),
            "source_line": pa.array([r["source_line"] for r in rows], pa.int64()),
            "content_hash": pa.array([r["content_hash"] for r in rows], pa.string()),
        }
    )
    with registered(con, _ingest_batch=batch):
        conflicts = con.execute(
            "SELECT b.item_id, b.source_line, i.source, i.source_line FROM _ingest_batch b "
            "JOIN items i USING (item_id) WHERE i.content_hash <> b.content_hash"
        ).fetchall()
        for item_id, line, other_source, other_line in conflicts:
            detail = f"item id '{item_id}' exists with different content (from {other_source}:{other_line})"
            rejects.append(Reject(str(path), line, "conflicting_id", detail, good[item_id].get("raw", "")))
        summary.already_present += con.execute(
            "SELECT count(*) FROM _ingest_batch b JOIN items i USING (item_id) "
            "WHERE i.content_hash = b.content_hash"
        ).fetchall()[0][0]
        inserted = con.execute(
            "INSERT INTO items (item_id, item_seq, dataset, split, text, label, gold, extra, source, "
            "source_line, content_hash) SELECT b.item_id, "
            "(SELECT coalesce(max(item_seq), 0) FROM items) + row_number() OVER (ORDER BY b.source_line), "
            "b.dataset, b.split, b.text, b.label, b.gold, b.extra::JSON, b.source, b.source_line, b.content_hash "
            "FROM _ingest_batch b ANTI JOIN items i USING (item_id)"
        ).fetchall()
        summary.new_items += int(inserted[0][0]) if inserted else 0


def _store_source_votes(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], config: SourceConfig) -> None:
    """Keep the non-abstain weak labels that came with the data (WRENCH) as ``source_votes``."""
    item_ids, lfs, votes = [], [], []
    for row in rows:
        for j, vote in enumerate(row["votes"] or ()):
            if vote == -1:
                continue
            names = config.lf_names
            if names is not None and j >= len(names):
                raise ValueError(
                    f"The 'lf_names' of source '{config.path}' name {len(names)} LFs, but item "
                    f"'{row['item_id']}' has {len(row['votes'])} weak labels."
                )
            item_ids.append(row["item_id"])
            lfs.append(names[j] if names else f"lf_{j}")
            votes.append(vote)
    if not item_ids:
        return
    table = pa.table({"item_id": item_ids, "lf": lfs, "vote": pa.array(votes, pa.int32())})
    with registered(con, _source_votes_batch=table):
        con.execute("INSERT INTO source_votes SELECT * FROM _source_votes_batch ON CONFLICT DO NOTHING")


def ingest(con: duckdb.DuckDBPyConnection, config: IngestConfig, *, progress: bool = False) -> IngestSummary:
    """Ingest every configured source in one transaction and return the counts."""
    from thresher.core.progress import track

    paths = [(path, source) for source in config.sources for path in expand_paths(source)]
    summaries = []
    with transaction(con):
        for path, source in track(paths, description="Ingesting files", enabled=progress):
            summaries.append(ingest_file(con, path, source, list(config.classes)))
    summary = IngestSummary(summaries)
    logger.info(
        "Ingested %d rows: %d new items, %d already present, %d rejected %s",
        summary.rows, summary.new_items, summary.already_present, sum(summary.rejected.values()),
        dict(summary.rejected),
    )
    return summary


class IngestStage(Stage):
    """Registry entry of the ingest stage: its cache also keys on the source files (path, size, mtime)."""

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> IngestSummary:
        return ingest(con, context.config, progress=context.progress)

    def cache_inputs(self, config: IngestConfig) -> dict[str, Any]:
        return {"files": [file_state(path) for source in config.sources for path in expand_paths(source)]}
