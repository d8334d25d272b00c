"""Ingest source files (any format of :mod:`thresher.storage.formats`) into the ``items`` table.

Every input row ends up either as an item or as a row of ``rejects`` with a reason code, so
nothing is dropped silently. Item ids are stable (a user id column, the WRENCH key, or a hash
of the row's content), which makes re-ingesting the same file a no-op.
"""

from __future__ import annotations

import glob
import hashlib
import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa

from thresher.storage.connection import registered, transaction
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from thresher.core.classes import parse_class
from thresher.core.config import ConfigPath, StageConfig
from thresher.core.stages import Stage, StageContext, file_state
from thresher.storage.answers import AnswersConfig, Thresholds
from thresher.storage.formats import EXTENSIONS, READERS, Format, Raw, Reject, starts_with_array
from thresher.storage.formats.base import escape_bytes, has_bad_utf8
from thresher.storage.formats.parquet import parquet_file

logger = logging.getLogger(__name__)

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

class ColumnMap(StageConfig):
    """Which source columns hold the text, the labels, the id and the split.

    Nested JSON fields are addressed with dots (``data.text``). Columns not named here are
    kept in ``items.extra``. ``text: null`` is a label-only source (crowd answers or votes on items
    that have no text): its items get an empty text, and detect, which needs text features, skips them.
    """

    text: str | None = "text"  # the text column (null: a label-only source)
    label: str | None = None  # the given (possibly noisy) label's column
    gold: str | None = None  # the trusted label's column, for evaluation only
    id: str | None = None  # the row id's column (items keep it, prefixed by the dataset)
    split: str | None = None  # a column holding each row's split


class VoteColumns(StageConfig):
    """Columns that hold weak labels, one LF per column (named by it): crowd workers' answers,
    another tool's LF outputs. A value is a class name or id (through ``label_map``); ``abstain``
    (as text, like ``label_map`` keys) and empty cells are no vote."""

    # the columns, one LF each (a glob such as worker_* takes every matching column)
    columns: list[str] = Field(min_length=1)
    abstain: str | int | None = -1  # the value that means no vote (empty cells are none too)
    thresholds: Thresholds | None = None  # numeric ratings -> classes, before label_map and class parsing

    @field_validator("columns")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"votes.columns lists a column twice: {value}")
        return value


def _label_key(value: Any) -> str:
    """A label value as ``label_map`` keys it: stripped text, integral numbers as integers ("1.0" as "1")."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


class VoteCounts(StageConfig):
    """Per-item vote counts: for each class, the column holding how many votes it got (a crowd that
    was aggregated before it reached you, with no record of who voted). Kept as counts in
    ``vote_counts`` for ``labeling.vote_counts``; an empty cell is 0."""

    columns: dict[str, str] = Field(min_length=1)  # class name -> the column of its vote count

    @field_validator("columns", mode="before")
    @classmethod
    def _names_as_text(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class SourceConfig(StageConfig):
    """One input: a file or glob, its format and how its columns map onto items."""

    path: ConfigPath  # a file or glob, relative to the config file
    format: Format | None = None  # csv | jsonl | json | parquet | wrench; None: from the extension
    dataset: str = Field(min_length=1)  # the dataset's name, the prefix of its item ids
    split: str | None = None  # every row's split (or columns.split per row; WRENCH: the file stem)
    columns: ColumnMap = ColumnMap()  # which source columns are the text, labels, id and split
    delimiter: str | None = Field(None, min_length=1, max_length=1)  # None: a tab for .tsv files, else a comma
    max_field_bytes: int = Field(1_000_000, ge=1)  # larger fields are rejected as oversize_field
    lf_names: list[str] | None = None  # WRENCH only: names of the weak_labels columns
    # Without an id column: "content" hashes the row (exact repeats become duplicate_row rejects);
    # "line" uses the file and line, keeping repeated rows as items of their own.
    row_ids: Literal["content", "line"] = "content"
    # Raw label and gold values mapped before they are parsed: to a class name or id, or null for
    # "no label" (e.g. {-1: null, pos: POS}). Keys match the value as text (1.0 as 1); others parse as usual.
    label_map: dict[str, str | int | None] | None = None
    votes: VoteColumns | None = None  # weak-label columns, kept as source_votes (use labeling.source_votes)
    answers: AnswersConfig | None = None  # crowd answers in a long file (item, worker, answer), kept as source_votes
    vote_counts: VoteCounts | None = None  # per-item counts of votes per class, kept as vote_counts

    @field_validator("label_map", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_label_key(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_vote_naming(self) -> "SourceConfig":
        if self.votes is not None and self.lf_names is not None:
            raise ValueError("Set either votes (vote columns, named by their columns) or lf_names (WRENCH), not both.")
        if self.columns.text is None and self.columns.id is None and self.row_ids == "content":
            raise ValueError(f"Source '{self.path}' has no text column (columns.text: null), so its items are known by "
                             "their id: set columns.id (or row_ids: line to number them by file and line).")
        if self.answers is not None and self.columns.id is None:
            raise ValueError(f"Source '{self.path}' has answers but no columns.id: name the column whose values the "
                             f"answers' '{self.answers.columns.item}' column refers to.")
        return self

    @property
    def vote_names(self) -> list[str] | None:
        """The LF names of the votes this source carries (WRENCH ``lf_names`` or the vote columns)."""
        return self.votes.columns if self.votes is not None else self.lf_names

    def mapped_label(self, value: Any) -> Any:
        """``value`` through ``label_map`` (unchanged when it is not listed)."""
        if self.label_map is None or value is None:
            return value
        key = _label_key(value)
        return self.label_map[key] if key in self.label_map else value

    def resolved_delimiter(self, path: Path) -> str:
        """The configured CSV delimiter, or the one implied by the file extension."""
        if self.delimiter is not None:
            return self.delimiter
        return "\t" if path.suffix.lower() == ".tsv" else ","

    def resolved_format(self, path: Path) -> Format:
        """The configured format, or the one implied by the file extension."""
        if self.format is not None:
            return self.format
        if path.suffix.lower() == ".json":
            return "json" if starts_with_array(path) else "wrench"
        try:
            return EXTENSIONS[path.suffix.lower()]
        except KeyError:
            raise ValueError(
                f"The 'format' of source '{self.path}' cannot be inferred from the extension "
                f"'{path.suffix}'. Set format to one of {sorted(set(EXTENSIONS.values()))}."
            ) from None


class IngestConfig(StageConfig):
    """The ingest stage: the sources and the class names labels are mapped onto."""

    sources: list[SourceConfig] = Field(min_length=1)  # the inputs
    classes: list[str] = Field(min_length=2)  # the pipeline's classes


@dataclass
class SourceSummary:
    """What happened to the rows of one source file."""

    source: str
    rows: int = 0
    new_items: int = 0
    already_present: int = 0
    rejected: Counter = field(default_factory=Counter)
    blank_lines: int = 0
    answers: int = 0  # crowd answers stored as votes (an answers file)
    abstained: int = 0  # answers that mean "no answer" (answers.abstain, or label_map to null)

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
    def answers(self) -> int:
        return sum(s.answers for s in self.sources)

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
            "answers": self.answers,
            "rejected": dict(self.rejected),
            "sources": [
                {
                    "source": s.source,
                    "rows": s.rows,
                    "new_items": s.new_items,
                    "already_present": s.already_present,
                    "rejected": dict(s.rejected),
                    "blank_lines": s.blank_lines,
                    **({"answers": s.answers, "abstained": s.abstained} if s.answers or s.abstained else {}),
                }
                for s in self.sources
            ],
        }


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


def _lookup(fields: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Find a column by name, or a nested JSON field by dotted path."""
    if name in fields:
        return True, fields[name]
    head, _, rest = name.partition(".")
    if rest and isinstance(fields.get(head), dict):
        return _lookup(fields[head], rest)
    return False, None


def _content_hash(text: str, label: int | None, gold: int | None, extra: str) -> str:
    """sha256 of ``json.dumps([text, label, gold, extra], ensure_ascii=False)``, written out (twice as
    fast as json.dumps, which builds an encoder per call)."""
    payload = (f"[{encode_basestring(text)}, {'null' if label is None else int(label)}, "
               f"{'null' if gold is None else int(gold)}, {encode_basestring(extra)}]")
    return hashlib.sha256(payload.encode()).hexdigest()


def _validate(
    row: Raw, path: Path, fmt: Format, config: SourceConfig, classes: list[str]
) -> dict[str, Any] | Reject:
    columns = config.columns
    source = str(path)
    problem = _unicode_problem(row.fields, "")
    if problem is not None:
        return Reject(source, row.line, problem[0], problem[1], escape_bytes(row.raw))
    for name, value in row.fields.items():
        size = len(value.encode("utf-8", "surrogateescape")) if isinstance(value, str) else 0
        if size > config.max_field_bytes:
            detail = f"field '{name}' has {size} bytes, more than max_field_bytes={config.max_field_bytes}"
            return Reject(source, row.line, "oversize_field", detail, escape_bytes(row.raw))
    text_column = "data.text" if fmt == "wrench" and columns.text == "text" else columns.text
    found, text = (True, "") if text_column is None else _lookup(row.fields, text_column)
    if not found:
        available = sorted(row.fields)
        detail = f"no text column '{text_column}'; available columns: {available}"
        return Reject(source, row.line, "missing_text", detail, row.raw)
    if text_column is not None and (text is None or (isinstance(text, str) and not text.strip())):
        return Reject(source, row.line, "missing_text", f"column '{text_column}' is empty", row.raw)
    if not isinstance(text, str):
        detail = f"column '{text_column}' must be a string, got {type(text).__name__}"
        return Reject(source, row.line, "wrong_type", detail, row.raw)
    if has_bad_utf8(text):
        return Reject(source, row.line, "invalid_utf8", "text is not valid UTF-8", escape_bytes(row.raw))

    gold_column = "label" if fmt == "wrench" and columns.gold is None and columns.label is None else columns.gold
    parsed: dict[str, int | None] = {}
    for role, name in (("label", columns.label), ("gold", gold_column)):
        parsed[role] = None
        if name is None:
            continue
        try:
            parsed[role] = parse_class(config.mapped_label(_lookup(row.fields, name)[1]), classes)
        except ValueError as exc:
            return Reject(source, row.line, "wrong_type", f"column '{name}': {exc}", row.raw)

    votes = row.votes
    if config.votes is not None:
        votes, abstain = [], None if config.votes.abstain is None else _label_key(config.votes.abstain)
        for name in config.votes.columns:
            value = _lookup(row.fields, name)[1]
            if value is None or (isinstance(value, str) and not value.strip()) or _label_key(value) == abstain:
                votes.append(-1)
                continue
            try:
                if config.votes.thresholds is not None:
                    value = config.votes.thresholds.binned(value)
                vote = parse_class(config.mapped_label(value), classes)
            except ValueError as exc:
                return Reject(source, row.line, "wrong_type", f"vote column '{name}': {exc}", row.raw)
            votes.append(-1 if vote is None else vote)

    counts = None
    if config.vote_counts is not None:
        counts = [0] * len(classes)
        for name, column in config.vote_counts.columns.items():
            value = _lookup(row.fields, column)[1]
            try:
                counts[parse_class(name, classes)] += _count(value)
            except ValueError as exc:
                return Reject(source, row.line, "wrong_type", f"vote count column '{column}': {exc}", row.raw)

    split = config.split
    if columns.split is not None:
        split = _lookup(row.fields, columns.split)[1]
        split = None if split is None else str(split)
    elif split is None and fmt == "wrench":
        split = path.stem

    mapped = {c for c in (text_column, columns.label, gold_column, columns.id, columns.split) if c}
    mapped.update(config.votes.columns if config.votes is not None else [])
    mapped.update(config.vote_counts.columns.values() if config.vote_counts is not None else [])
    extra = {k: v for k, v in row.fields.items() if k not in mapped and k != "__key__"}
    extra_json = json.dumps(extra, default=str, ensure_ascii=False, sort_keys=True)
    if counts is not None:  # changed counts are changed content: a conflicting_id, never a silent keep
        extra_json = json.dumps({"extra": extra_json, "vote_counts": counts})

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
        "votes": votes,
        "counts": counts,
        "raw": row.raw,
    }


def _count(value: Any) -> int:
    """A vote count: a whole number >= 0 (an int, a float such as 3.0, or its text); empty is 0."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number of votes, got {value!r}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number of votes, got {value!r}") from None
    if not number.is_integer() or number < 0:
        raise ValueError(f"expected a whole number of votes >= 0, got {value!r}")
    return int(number)


def expand_paths(config: SourceConfig) -> list[Path]:
    """The files a source names, sorted; a pattern that matches nothing is an error."""
    matches = sorted(Path(p) for p in glob.glob(config.path, recursive=True))
    if not matches:
        raise FileNotFoundError(f"The source path '{config.path}' matches no file.")
    return matches


# The validated rows of one batch, as Arrow columns (what ``items`` stores, plus the WRENCH votes).
ROW_SCHEMA = pa.schema([
    ("item_id", pa.string()), ("dataset", pa.string()), ("split", pa.string()), ("text", pa.string()),
    ("label", pa.int32()), ("gold", pa.int32()), ("extra", pa.string()), ("source", pa.string()),
    ("source_line", pa.int64()), ("content_hash", pa.string()), ("votes", pa.list_(pa.int32())),
    ("counts", pa.list_(pa.int32())),
])


@dataclass
class ParsedBatch:
    """Validated rows of one stretch of a file (repeats not yet resolved) and, on the row path, each
    row's raw text (the Parquet fast path rebuilds the raw text of the few rows that become rejects)."""

    rows: pa.Table
    raw: pa.Array | None = None


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({name: pa.array([r[name] for r in rows], ROW_SCHEMA.field(name).type)
                     for name in ROW_SCHEMA.names}, schema=ROW_SCHEMA)


def _row_batches(path: Path, fmt: Format, config: SourceConfig, classes: list[str], summary: SourceSummary,
                 rejects: list[Reject], batch_rows: int) -> Iterator[ParsedBatch]:
    """Any format, one row at a time through :func:`_validate`, in batches of ``batch_rows`` rows."""
    rows: list[dict[str, Any]] = []

    def batch() -> ParsedBatch:
        parsed = ParsedBatch(_rows_table(rows), pa.array([r["raw"] for r in rows], pa.string()))
        rows.clear()
        return parsed

    for parsed in READERS[fmt].read(path, config, summary):
        summary.rows += 1
        if isinstance(parsed, Reject):
            rejects.append(parsed)
            continue
        row = _checked(parsed, path, fmt, config, classes)
        if isinstance(row, Reject):
            rejects.append(row)
            continue
        rows.append(row)
        if len(rows) >= batch_rows:
            yield batch()
    if rows:
        yield batch()


def _checked(parsed: Raw, path: Path, fmt: Format, config: SourceConfig, classes: list[str]) -> dict[str, Any] | Reject:
    try:
        return _validate(parsed, path, fmt, config, classes)
    except Exception as exc:  # no input row may fail its file: it is a reject with the reason
        detail = f"thresher could not process this row ({type(exc).__name__}: {exc})"
        return Reject(str(path), parsed.line, "unparseable", escape_bytes(detail), escape_bytes(parsed.raw))


def _primitive(dtype: pa.DataType) -> bool:
    return not (pa.types.is_nested(dtype) or pa.types.is_dictionary(dtype) or isinstance(dtype, pa.ExtensionType))


def _columnar_parquet(path: Path, config: SourceConfig) -> bool:
    """Whether a Parquet file can take the columnar path: flat columns, the mapped ones at the top
    level, a string text column and column names that need no escaping."""
    if config.label_map is not None or config.votes is not None or config.vote_counts is not None:  # row by row
        return False
    schema = pq.read_schema(path)
    columns = config.columns
    mapped = [c for c in (columns.text, columns.label, columns.gold, columns.id, columns.split) if c]
    return (columns.text is not None and all(name in schema.names for name in mapped)
            and all(_primitive(f.type) for f in schema) and _is_string(schema.field(columns.text))
            and _unicode_problem({name: None for name in schema.names}, "") is None)


# Python's str.strip() whitespace, for RE2: a text made only of these is empty to the row path.
_BLANK = r"^[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*$"
# Characters DuckDB's to_json escapes as \u00XX with upper-case hex where Python writes lower case.
_HEX_ESCAPED = r"[\x{01}-\x{07}\x{0b}\x{0e}-\x{1f}]"
# The content hash of _content_hash, in SQL (to_json escapes as json.dumps(ensure_ascii=False) does,
# but for the characters of _HEX_ESCAPED).
_HASH_SQL = ("sha256('[' || to_json(text) || ', ' || coalesce(label::VARCHAR, 'null') || ', ' || "
             "coalesce(gold::VARCHAR, 'null') || ', ' || to_json(extra) || ']')")


def _is_string(column: pa.Array | pa.ChunkedArray | pa.Field) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def _flag(array: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(bool)


def _class_ids(array: pa.Array | None, n: int, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Class ids (-1: none) of a label column, and which values :func:`parse_class` refuses (or may)."""
    import pyarrow.compute as pc

    ids, bad = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=bool)
    if array is None or array.null_count == n:
        return ids, bad
    present = ~_flag(pc.is_null(array))
    if pa.types.is_floating(array.type):
        values = array.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            good = present & np.isfinite(values) & (values == np.round(values)) & (values >= 0) & (values < len(classes))
        ids[good] = values[good].astype(np.int64)
        return ids, present & ~good
    uniques = pc.unique(array.filter(pc.is_valid(array)))
    parsed = []
    for value in uniques.to_pylist():
        try:
            parsed.append(parse_class(value, classes))
        except ValueError:
            parsed.append(-2)
    lookup = np.array(parsed + [-1], dtype=np.int64)
    position = pc.fill_null(pc.index_in(array, value_set=uniques), len(parsed)).to_numpy(zero_copy_only=False)
    found = lookup[position]
    bad = found == -2
    ids[~bad] = found[~bad]
    return ids, bad


def _as_strings(array: pa.Array) -> pa.Array:
    """``str(value)`` of every value (None stays None), as Python would write it."""
    import pyarrow.compute as pc

    if _is_string(array):
        return array.cast(pa.string())
    if pa.types.is_integer(array.type):
        return pc.cast(array, pa.string())
    return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


def _parquet_raw(batch: pa.RecordBatch, index: int) -> str:
    """The raw text kept with a reject of a Parquet row: the row as JSON."""
    return json.dumps(batch.slice(index, 1).to_pylist()[0], default=str, ensure_ascii=False)


def _parquet_raws(path: Path, lines: list[int]) -> dict[int, str]:
    """The raw texts of the given rows (1-based) of a Parquet file, reading only their row groups."""
    wanted, found, start = sorted(set(lines)), {}, 0
    file = parquet_file(path)
    for group in range(file.metadata.num_row_groups):
        stop = start + file.metadata.row_group(group).num_rows
        inside = [line for line in wanted if start < line <= stop]
        if inside:
            batch = pa.RecordBatch.from_struct_array(file.read_row_group(group).to_struct_array().combine_chunks())
            found.update({line: _parquet_raw(batch, line - start - 1) for line in inside})
        start = stop
    return found


def _parquet_batches(path: Path, config: SourceConfig, classes: list[str], summary: SourceSummary,
                     rejects: list[Reject], batch_rows: int) -> Iterator[ParsedBatch]:
    """A flat Parquet file a column at a time, content hashes in SQL: only rows a vectorised check
    catches (a NUL, an oversize field, a blank text or id, a class :func:`parse_class` may refuse)
    go through the row-by-row :func:`_validate`, so items and rejects are the row path's exactly."""
    import pyarrow.compute as pc

    columns, source = config.columns, str(path)
    mapped = {c for c in (columns.text, columns.label, columns.gold, columns.id, columns.split) if c}
    hasher = duckdb.connect()
    number = 0
    try:
        for record_batch in parquet_file(path).iter_batches(batch_size=batch_rows):
            n, first = record_batch.num_rows, number + 1
            number += n
            summary.rows += n
            suspect = np.zeros(n, dtype=bool)
            for array in record_batch.columns:
                if _is_string(array):
                    suspect |= _flag(pc.match_substring(array, "\x00"))
                    suspect |= _flag(pc.greater(pc.binary_length(array), config.max_field_bytes))
            text = record_batch.column(columns.text).cast(pa.string())
            suspect |= _flag(pc.is_null(text)) | _flag(pc.match_substring_regex(text, _BLANK))
            label, bad_label = _class_ids(None if columns.label is None else record_batch.column(columns.label), n, classes)
            gold, bad_gold = _class_ids(None if columns.gold is None else record_batch.column(columns.gold), n, classes)
            suspect |= bad_label | bad_gold
            fields: dict[str, pa.Array] = {
                "text": text, "label": pa.array(label, pa.int32(), mask=label < 0),
                "gold": pa.array(gold, pa.int32(), mask=gold < 0),
                "source_line": pa.array(np.arange(first, first + n), pa.int64()),
            }
            if columns.id is not None:
                user_ids = _as_strings(record_batch.column(columns.id))
                suspect |= _flag(pc.is_null(user_ids)) | _flag(pc.match_substring_regex(user_ids, _BLANK))
                fields["item_id"] = pc.binary_join_element_wise(f"{config.dataset}:", user_ids, "")
            fields["split"] = (_as_strings(record_batch.column(columns.split)) if columns.split is not None
                               else pa.array([config.split] * n, pa.string()))
            extra_names = [c for c in record_batch.schema.names if c not in mapped and c != "__key__"]
            fields["extra"] = pa.array(
                [json.dumps(dict(zip(extra_names, values)), default=str, ensure_ascii=False, sort_keys=True)
                 for values in zip(*(record_batch.column(c).to_pylist() for c in extra_names))]
                if extra_names else ["{}"] * n, pa.string())

            fast = pa.table(fields).filter(pa.array(~suspect))
            with registered(hasher, _fast_rows=fast):
                hashes = hasher.sql(f"SELECT {_HASH_SQL} FROM _fast_rows").to_arrow_table().column(0).to_pylist()
            escaped = _flag(pc.match_substring_regex(fast.column("text"), _HEX_ESCAPED))
            for i in np.flatnonzero(escaped):
                row = fast.slice(int(i), 1).to_pylist()[0]
                hashes[i] = _content_hash(row["text"], row["label"], row["gold"], row["extra"])
            fast = fast.append_column("content_hash", pa.array(hashes, pa.string()))
            if columns.id is None:
                ids = ([f"{config.dataset}:{path.name}:{line}" for line in fast.column("source_line").to_pylist()]
                       if config.row_ids == "line" else [f"{config.dataset}:{h[:20]}" for h in hashes])
                fast = fast.append_column("item_id", pa.array(ids, pa.string()))
            fast = fast.append_column("dataset", pa.array([config.dataset] * fast.num_rows, pa.string()))
            fast = fast.append_column("source", pa.array([source] * fast.num_rows, pa.string()))
            fast = fast.append_column("votes", pa.nulls(fast.num_rows, pa.list_(pa.int32())))
            fast = fast.append_column("counts", pa.nulls(fast.num_rows, pa.list_(pa.int32())))
            slow = []
            for i in np.flatnonzero(suspect):
                row = _checked(Raw(first + int(i), record_batch.slice(int(i), 1).to_pylist()[0],
                                    _parquet_raw(record_batch, int(i))), path, "parquet", config, classes)
                if isinstance(row, Reject):
                    rejects.append(row)
                else:
                    slow.append(row)
            rows = fast.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
            if slow:
                rows = pa.concat_tables([rows, _rows_table(slow)])
                rows = rows.take(pc.sort_indices(rows, [("source_line", "ascending")]))
            yield ParsedBatch(rows)
    finally:
        hasher.close()


def iter_parsed(path: Path, config: SourceConfig, classes: list[str], summary: SourceSummary, rejects: list[Reject],
                *, batch_rows: int = 50_000, columnar: bool = True) -> Iterator[ParsedBatch]:
    """Parse and validate one file, yielding its rows in batches of about ``batch_rows``.

    Rejects are appended to ``rejects`` and counts to ``summary`` as the file is read. Repeated ids
    are resolved after, in SQL (:class:`Repeats`). Flat Parquet files take the columnar path unless
    ``columnar`` is False (the tests compare both).
    """
    fmt = config.resolved_format(path)
    if columnar and fmt == "parquet" and _columnar_parquet(path, config):
        yield from _parquet_batches(path, config, classes, summary, rejects, batch_rows)
    else:
        yield from _row_batches(path, fmt, config, classes, summary, rejects, batch_rows)


class StagedFile:
    """Every validated row of one file in a temporary table (DuckDB spills it to disk), then repeats
    resolved once, in SQL, over the whole file: the first row with an id is kept, a later one is a
    ``duplicate_row`` (same content) or ``conflicting_id`` reject. One pass per file, not one lookup
    per batch against all the rows before it (which made ingest quadratic in the rows).

    Batches are scanned as relations (``from_arrow``), never registered: inside the ingest
    transaction a registered table stays referenced until the commit, so every batch would."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> None:
        self._con, self._path, self._fmt = con, path, fmt
        columns = ", ".join(f"{field.name} {_DUCK_TYPES[field.name]}" for field in ROW_SCHEMA)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _staged ({columns}, raw VARCHAR)")
        con.execute("CREATE OR REPLACE TEMP TABLE _dropped (source_line BIGINT)")

    def add(self, batch: ParsedBatch) -> None:
        raw = batch.raw if batch.raw is not None else pa.nulls(batch.rows.num_rows, pa.string())
        self._con.from_arrow(batch.rows.append_column("raw", raw)).query("_batch", "INSERT INTO _staged SELECT * FROM _batch")

    def raws(self, lines: list[int]) -> dict[int, str]:
        """The raw text of the given rows of the file."""
        if not lines:
            return {}
        if self._fmt == "parquet" and self._con.sql("SELECT count(*) FROM _staged WHERE raw IS NULL").fetchall()[0][0]:
            return _parquet_raws(self._path, lines)
        rows = self._con.sql(f"SELECT source_line, raw FROM _staged WHERE source_line IN ({', '.join(map(str, lines))})")
        return dict(rows.fetchall())

    def repeats(self, rejects: list[Reject]) -> None:
        """Reject every row whose id came earlier in the file, and mark it dropped."""
        repeated = self._con.sql(
            "WITH firsts AS (SELECT item_id, min(source_line) AS first_line, arg_min(content_hash, source_line) AS first_hash "
            "FROM _staged GROUP BY item_id HAVING count(*) > 1) "
            "SELECT s.item_id, s.source, s.source_line, s.content_hash = f.first_hash, f.first_line "
            "FROM _staged s JOIN firsts f USING (item_id) WHERE s.source_line > f.first_line ORDER BY s.source_line"
        ).fetchall()
        self.drop(rejects, [(source, line, "duplicate_row" if same else "conflicting_id",
                             f"item id '{item_id}' already seen at line {first_line}")
                            for item_id, source, line, same, first_line in repeated])

    def drop(self, rejects: list[Reject], found: list[tuple[str, int, str, str]]) -> None:
        """Reject the rows ``(source, line, reason, detail)`` and leave them out of what is kept."""
        if not found:
            return
        raws = self.raws([line for _, line, _, _ in found])
        rejects.extend(Reject(source, line, reason, detail, raws[line]) for source, line, reason, detail in found)
        lines = pa.table({"source_line": pa.array([line for _, line, _, _ in found], pa.int64())})
        self._con.from_arrow(lines).query("_lines", "INSERT INTO _dropped SELECT source_line FROM _lines")

    KEPT = "(SELECT * FROM _staged ANTI JOIN _dropped USING (source_line))"

    def close(self) -> None:
        self._con.execute("DROP TABLE IF EXISTS _staged")
        self._con.execute("DROP TABLE IF EXISTS _dropped")


_DUCK_TYPES = {"item_id": "VARCHAR", "dataset": "VARCHAR", "split": "VARCHAR", "text": "VARCHAR", "label": "INTEGER",
               "gold": "INTEGER", "extra": "VARCHAR", "source": "VARCHAR", "source_line": "BIGINT",
               "content_hash": "VARCHAR", "votes": "INTEGER[]", "counts": "INTEGER[]"}


def parse_file(path: Path, config: SourceConfig, classes: list[str]) -> tuple[list[dict[str, Any]], list[Reject], SourceSummary]:
    """Parse and validate one file without touching the project database: its rows (one per item
    id), its rejects with reasons, and the counts."""
    from thresher.storage.columns import resolved_votes

    config = resolved_votes(config, path)
    summary = SourceSummary(source=str(path))
    rejects: list[Reject] = []
    rows: list[dict[str, Any]] = []
    con = duckdb.connect()
    try:
        staged = StagedFile(con, path, config.resolved_format(path))
        for batch in iter_parsed(path, config, classes, summary, rejects):
            staged.add(batch)
        staged.repeats(rejects)
        kept = con.sql(f"SELECT * EXCLUDE (raw) FROM {StagedFile.KEPT} ORDER BY source_line").to_arrow_table()
        rows.extend(kept.to_pylist())
    finally:
        con.close()
    rejects.sort(key=lambda r: r.line)
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
    batch_rows: int = 50_000, columnar: bool = True,
) -> SourceSummary:
    """Parse, validate and load one file, ``batch_rows`` rows at a time; rejects go to ``rejects``
    as each batch is loaded (memory does not grow with the file).

    Idempotent. The caller owns the transaction, so a failure leaves the database as it was.
    """
    from thresher.storage.columns import resolved_votes

    config = resolved_votes(config, path)
    for name in (config.vote_counts.columns if config.vote_counts is not None else {}):
        try:
            parse_class(name, classes)
        except ValueError as exc:
            raise ValueError(f"vote_counts of source '{config.path}' names the class {name!r}, which is not one of the "
                             f"classes {classes}: {exc}") from None
    summary = SourceSummary(source=str(path))
    rejects: list[Reject] = []
    staged = StagedFile(con, path, config.resolved_format(path))
    try:
        for batch in iter_parsed(path, config, classes, summary, rejects, batch_rows=batch_rows, columnar=columnar):
            staged.add(batch)
            _store_rejects(con, rejects, summary)
        staged.repeats(rejects)
        _load_file(con, path, staged, rejects, summary)
        _store_source_votes(con, config)
        con.execute(f"INSERT INTO vote_counts SELECT item_id, counts FROM {StagedFile.KEPT} WHERE counts IS NOT NULL "
                    "ON CONFLICT DO NOTHING")
        _store_rejects(con, rejects, summary)
    finally:
        staged.close()
    return summary


RAW_LIMIT = 65_536  # characters of a rejected row kept in rejects.raw; a longer one keeps this prefix and its length


def bounded_raw(raw: str) -> str:
    """``raw`` as ``rejects`` keeps it: whole up to :data:`RAW_LIMIT` characters, else that prefix and a
    note of the full length (a 50 MB bad line should not become a 50 MB row)."""
    if len(raw) <= RAW_LIMIT:
        return raw
    return f"{raw[:RAW_LIMIT]}... [truncated: {len(raw):,} characters in all]"


def _store_rejects(con: duckdb.DuckDBPyConnection, rejects: list[Reject], summary: SourceSummary) -> None:
    """Write the rejects gathered so far, count them, and forget them."""
    if not rejects:
        return
    table = pa.table({"source": [r.source for r in rejects], "line": pa.array([r.line for r in rejects], pa.int64()),
                      "reason": [r.reason for r in rejects], "detail": [r.detail for r in rejects],
                      "raw": [bounded_raw(r.raw) for r in rejects]})
    con.from_arrow(table).query("_rejects_batch", "INSERT INTO rejects (source, line, reason, detail, raw) "
                                "SELECT source, line, reason, detail, raw FROM _rejects_batch ON CONFLICT DO NOTHING")
    summary.rejected.update(r.reason for r in rejects)
    rejects.clear()


def _load_file(con: duckdb.DuckDBPyConnection, path: Path, staged: StagedFile, rejects: list[Reject],
               summary: SourceSummary) -> None:
    """Insert the file's kept rows: new ids get the next item_seq in file order; an id stored with
    other content is a reject, one with the same content is already present."""
    stored = con.sql(
        f"SELECT b.item_id, b.source_line, i.source, i.source_line, i.content_hash = b.content_hash "
        f"FROM {StagedFile.KEPT} b JOIN items i USING (item_id) ORDER BY b.source_line").fetchall()
    summary.already_present += sum(1 for *_, same in stored if same)
    staged.drop(rejects, [(str(path), line, "conflicting_id",
                           f"item id '{item_id}' exists with different content (from {other_source}:{other_line})")
                          for item_id, line, other_source, other_line, same in stored if not same])
    inserted = con.sql(
        "INSERT INTO items (item_id, item_seq, dataset, split, text, label, gold, extra, source, "
        "source_line, content_hash) SELECT b.item_id, "
        "(SELECT coalesce(max(item_seq), 0) FROM items) + row_number() OVER (ORDER BY b.source_line), "
        "b.dataset, b.split, b.text, b.label, b.gold, b.extra::JSON, b.source, b.source_line, b.content_hash "
        f"FROM {StagedFile.KEPT} b ANTI JOIN items i USING (item_id)"
    ).fetchall()
    summary.new_items += int(inserted[0][0]) if inserted else 0


def _store_source_votes(con: duckdb.DuckDBPyConnection, config: SourceConfig) -> None:
    """Keep the non-abstain weak labels that came with the data (WRENCH, vote columns) as ``source_votes``."""
    names = config.vote_names
    kept = StagedFile.KEPT
    if names is not None:
        too_many = con.execute(f"SELECT item_id, len(votes) FROM {kept} WHERE len(votes) > ? LIMIT 1",
                               [len(names)]).fetchall()
        if too_many:
            raise ValueError(
                f"The 'lf_names' of source '{config.path}' name {len(names)} LFs, but item "
                f"'{too_many[0][0]}' has {too_many[0][1]} weak labels."
            )
    lf_name = "list_extract(?::VARCHAR[], j)" if names else "'lf_' || (j - 1)"
    con.execute(
        f"INSERT INTO source_votes SELECT item_id, {lf_name}, vote FROM "
        f"(SELECT item_id, unnest(votes) AS vote, generate_subscripts(votes, 1) AS j FROM {kept} WHERE votes IS NOT NULL) "
        "WHERE vote <> -1 ON CONFLICT DO NOTHING", [names] if names else [])


def answers_source(source: SourceConfig) -> SourceConfig:
    """The answers file as a source config, so that the items' file readers (and their rejects) read it."""
    answers = source.answers
    assert answers is not None
    return SourceConfig(path=answers.path, format=answers.format, dataset=source.dataset,
                        delimiter=answers.delimiter, max_field_bytes=source.max_field_bytes,
                        label_map=source.label_map)


def ingest_answers(con: duckdb.DuckDBPyConnection, source: SourceConfig, classes: list[str],
                   summary: SourceSummary) -> None:
    """Read ``source.answers`` into ``source_votes`` (worker = LF, answer = vote) and its bad rows into
    ``rejects``, counting both in ``summary``. Idempotent; the caller owns the transaction."""
    answers = source.answers
    assert answers is not None
    path = Path(answers.path)
    config = answers_source(source)
    names = answers.columns
    abstain = None if answers.abstain is None else _label_key(answers.abstain)
    rejects: list[Reject] = []
    rows: dict[tuple[str, str], tuple[int, int]] = {}  # (item id, worker) -> (vote, line)
    for parsed in READERS[config.resolved_format(path)].read(path, config, summary):
        summary.rows += 1
        if isinstance(parsed, Reject):
            rejects.append(parsed)
            continue
        values: dict[str, Any] = {}
        for role in ("item", "worker", "answer"):
            found, value = _lookup(parsed.fields, getattr(names, role))
            values[role] = None if not found or value is None or str(value).strip() == "" else value
        missing = [getattr(names, role) for role in ("item", "worker", "answer") if values[role] is None]
        if missing:
            rejects.append(Reject(str(path), parsed.line, "missing_field",
                                  f"no value in column(s) {', '.join(repr(m) for m in missing)}", parsed.raw))
            continue
        if abstain is not None and _label_key(values["answer"]) == abstain:
            summary.abstained += 1
            continue
        try:
            answer = values["answer"] if answers.thresholds is None else answers.thresholds.binned(values["answer"])
            vote = parse_class(source.mapped_label(answer), classes)
        except ValueError as exc:
            rejects.append(Reject(str(path), parsed.line, "invalid_answer", f"column '{names.answer}': {exc}", parsed.raw))
            continue
        if vote is None:  # label_map maps this answer to "no label"
            summary.abstained += 1
            continue
        key = (f"{source.dataset}:{values['item']}", str(values["worker"]))
        if key in rows:
            first_vote, first_line = rows[key]
            reason = "duplicate_row" if first_vote == vote else "conflicting_answer"
            rejects.append(Reject(str(path), parsed.line, reason,
                                  f"worker '{key[1]}' answered item '{values['item']}' already (line {first_line})",
                                  parsed.raw))
            continue
        rows[key] = (vote, parsed.line)
    table = pa.table({"item_id": [k[0] for k in rows], "lf": [k[1] for k in rows],
                      "vote": pa.array([v for v, _ in rows.values()], pa.int32()),
                      "line": pa.array([line for _, line in rows.values()], pa.int64())})
    con.register("_answers", table)
    try:
        unknown = con.execute(
            "SELECT a.line, a.item_id FROM _answers a ANTI JOIN items i USING (item_id) WHERE true ORDER BY a.line"
        ).fetchall()
        changed = con.execute(
            "SELECT a.line, a.item_id, a.lf, s.vote FROM _answers a JOIN source_votes s USING (item_id, lf) "
            "WHERE s.vote <> a.vote ORDER BY a.line").fetchall()
        raws = _raw_lines(path, {line for line, *_ in unknown + changed}, config)
        prefix = len(source.dataset) + 1
        rejects += [Reject(str(path), line, "unknown_item", f"no item '{item_id[prefix:]}' in dataset "
                           f"'{source.dataset}' (the answers' '{names.item}' column holds the source's "
                           f"'{source.columns.id}' values)", raws.get(line, "")) for line, item_id in unknown]
        rejects += [Reject(str(path), line, "conflicting_answer", f"worker '{lf}' answered item '{item_id[prefix:]}' "
                           f"as class {classes[vote]} in an earlier ingest", raws.get(line, ""))
                    for line, item_id, lf, vote in changed]
        stored = con.execute(
            "INSERT INTO source_votes SELECT a.item_id, a.lf, a.vote FROM _answers a SEMI JOIN items i USING (item_id) "
            "ON CONFLICT DO NOTHING").fetchall()
        summary.answers += int(stored[0][0]) if stored else 0
        summary.already_present += len(rows) - len(unknown) - len(changed) - (int(stored[0][0]) if stored else 0)
    finally:
        con.unregister("_answers")
    _store_rejects(con, rejects, summary)


def _raw_lines(path: Path, lines: set[int], config: SourceConfig) -> dict[int, str]:
    """The raw text of the given rows of the answers file (read again: only rejects need it)."""
    if not lines:
        return {}
    scratch = SourceSummary(source=str(path))
    return {parsed.line: parsed.raw for parsed in READERS[config.resolved_format(path)].read(path, config, scratch)
            if parsed.line in lines}


def ingest(con: duckdb.DuckDBPyConnection, config: IngestConfig, *, progress: bool = False) -> IngestSummary:
    """Ingest every configured source in one transaction and return the counts."""
    from thresher.core.progress import track

    files = [(path, source, False) for source in config.sources for path in expand_paths(source)]
    files += [(Path(source.answers.path), source, True) for source in config.sources if source.answers is not None]
    summaries = []
    with transaction(con):
        con.execute("DELETE FROM classes")  # the config's classes, named in the SQL views (curated)
        con.executemany("INSERT INTO classes VALUES (?, ?)", list(enumerate(config.classes)))
        for path, source, answers in track(files, description="Ingesting files", enabled=progress):
            if answers:  # after every source's items, which the answers refer to
                summaries.append(SourceSummary(source=str(path)))
                ingest_answers(con, source, list(config.classes), summaries[-1])
            else:
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

    def must_rerun(self, con: duckdb.DuckDBPyConnection) -> bool:
        """A database from before the classes table (schema 9) has items but no class names: ingest again
        (it adds nothing new) so that the views can name the classes."""
        return bool(con.execute("SELECT (SELECT count(*) FROM classes) = 0 AND EXISTS (SELECT 1 FROM items)").fetchall()[0][0])

    def cache_inputs(self, config: IngestConfig) -> dict[str, Any]:
        return {"files": [file_state(path) for source in config.sources for path in expand_paths(source)]
                + [file_state(source.answers.path) for source in config.sources if source.answers is not None]}
