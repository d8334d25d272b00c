"""The columns a source file offers, read from its first rows: what the column mapping is checked against.

``thresher check`` (and the start of every command) compares each source's ``columns`` mapping
with these, so a misspelt text, label, gold, id or split column is an error naming the columns
found, before ingest would reject every row as ``missing_text`` or silently load no gold labels.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thresher.storage.ingest import SourceConfig

SAMPLE_ROWS = 50
_CSV_SAMPLE_BYTES = 1 << 20


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every key of a JSON object with its value, nested keys as dotted paths (``data.text``) too."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        flat[name] = value
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
    return flat


def iter_rows(path: Path, fmt: str, config: SourceConfig) -> Iterator[dict[str, Any]]:
    """The rows of one CSV, JSONL, JSON-array or Parquet file as mappings, nested fields also under dotted
    names; rows that do not parse are skipped (ingest is what quarantines them, with a reason)."""
    if fmt == "csv":
        csv.field_size_limit(sys.maxsize)  # as ingest: max_field_bytes is enforced there, with a reject
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=config.resolved_delimiter(path))
            while True:
                try:
                    row = next(reader)
                except csv.Error:
                    continue
                except StopIteration:
                    return
                yield {k: v for k, v in row.items() if isinstance(k, str)}
    elif fmt == "jsonl":
        with path.open("rb") as handle:
            for line in handle:
                try:
                    obj = json.loads(line.decode("utf-8-sig", "replace"))
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    yield _flatten(obj)
    elif fmt == "json":
        data = json.loads(path.read_bytes().decode("utf-8-sig", "replace"))
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict):
                yield _flatten(entry)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                yield _flatten(row)
    else:
        raise ValueError(f"Rows of format {fmt!r} are not read here (CSV, JSONL, JSON arrays and Parquet are).")


def sample_columns(path: Path, fmt: str, config: SourceConfig) -> set[str]:
    """The column names (nested ones dotted) in the first rows of one source file."""
    if fmt == "csv":
        with path.open("rb") as handle:
            head = handle.read(_CSV_SAMPLE_BYTES).decode("utf-8-sig", "replace")
        header = next(csv.reader(io.StringIO(head, newline=""), delimiter=config.resolved_delimiter(path)), [])
        return set(header)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        names = set()

        def walk(fields, prefix: str) -> None:
            for field in fields:
                names.add(prefix + field.name)
                if pa.types.is_struct(field.type):  # nested fields are addressed with dots
                    walk([field.type.field(i) for i in range(field.type.num_fields)], f"{prefix}{field.name}.")

        walk(schema, "")
        return names
    if fmt in ("jsonl", "json"):
        names = set()
        for row in itertools.islice(iter_rows(path, fmt, config), SAMPLE_ROWS):
            names |= set(row)
        return names
    data = json.loads(path.read_bytes().decode("utf-8-sig", "replace"))  # wrench: an object of entries
    names = set()
    for _, entry in zip(range(SAMPLE_ROWS), data.values() if isinstance(data, dict) else []):
        if isinstance(entry, dict):
            names |= {f"data.{n}" for n in _flatten(entry.get("data") or {})}
            names |= {k for k in entry if k not in ("data", "weak_labels")}
    return names


def missing_columns(config: SourceConfig, path: Path, found: set[str]) -> list[tuple[str, str]]:
    """The (role, column) pairs of the source's mapping that the file does not have."""
    fmt = config.resolved_format(path)
    columns = config.columns
    text = "data.text" if fmt == "wrench" and columns.text == "text" else columns.text
    gold = "label" if fmt == "wrench" and columns.gold is None and columns.label is None else columns.gold
    wanted = [("text", text), ("label", columns.label), ("gold", gold), ("id", columns.id), ("split", columns.split)]
    wanted += [("vote", name) for name in (config.votes.columns if config.votes is not None else [])
               if not is_pattern(name)]
    missing = [(role, name) for role, name in wanted if name is not None and name not in found]
    if config.votes is not None:
        missing += [("vote pattern", p) for p in config.votes.columns if is_pattern(p) and not fnmatch.filter(found, p)]
    return missing


def is_pattern(name: str) -> bool:
    """Whether a ``votes.columns`` entry is a glob pattern (``worker_*``) rather than a column name."""
    return any(c in name for c in "*?[")


def resolved_votes(config: SourceConfig, path: Path) -> SourceConfig:
    """``config`` with the glob patterns of ``votes.columns`` replaced by the columns of ``path`` they
    match (sorted; a column named twice counts once); a pattern that matches none is an error."""
    if config.votes is None or not any(is_pattern(name) for name in config.votes.columns):
        return config
    found = sample_columns(path, config.resolved_format(path), config)
    columns: list[str] = []
    for name in config.votes.columns:
        matches = sorted(fnmatch.filter(found, name)) if is_pattern(name) else [name]
        if not matches:
            raise ValueError(f"votes.columns pattern '{name}' matches no column of '{path}'; its columns are: "
                             f"{listing(found)}")
        columns += [m for m in matches if m not in columns]
    return config.model_copy(update={"votes": config.votes.model_copy(update={"columns": columns})})


def listing(found: set[str], limit: int = 40) -> str:
    """Column names for an error message, sorted, the first ``limit`` of them."""
    shown = sorted(found)
    return (", ".join(shown[:limit]) + (f", ... ({len(shown)} in all)" if len(shown) > limit else "")) or "(none)"
