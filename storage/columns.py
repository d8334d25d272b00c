"""The columns a source file offers, read from its first rows: what the column mapping is checked against.

``thresher check`` (and the start of every command) compares each source's ``columns`` mapping
with these, so a misspelt text, label, gold, id or split column is an error naming the columns
found, before ingest would reject every row as ``missing_text`` or silently load no gold labels.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from thresher.storage.ingest import SourceConfig

SAMPLE_ROWS = 50
_CSV_SAMPLE_BYTES = 1 << 20


def _flatten(obj: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key of a JSON object, nested keys as dotted paths (``data.text``)."""
    names = set()
    for key, value in obj.items():
        name = f"{prefix}{key}"
        names.add(name)
        if isinstance(value, dict):
            names |= _flatten(value, f"{name}.")
    return names


def sample_columns(path: Path, fmt: str, config: SourceConfig) -> set[str]:
    """The column names (nested ones dotted) in the first rows of one source file."""
    if fmt == "csv":
        with path.open("rb") as handle:
            head = handle.read(_CSV_SAMPLE_BYTES).decode("utf-8-sig", "replace")
        header = next(csv.reader(io.StringIO(head, newline=""), delimiter=config.delimiter), [])
        return set(header)
    if fmt == "jsonl":
        names: set[str] = set()
        with path.open("rb") as handle:
            seen = 0
            for line in handle:
                try:
                    obj = json.loads(line.decode("utf-8-sig", "replace"))
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    names |= _flatten(obj)
                    seen += 1
                if seen >= SAMPLE_ROWS:
                    break
        return names
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
    data = json.loads(path.read_bytes().decode("utf-8-sig", "replace"))  # json: an array; wrench: an object
    names = set()
    if fmt == "json" and isinstance(data, list):
        for entry in data[:SAMPLE_ROWS]:
            if isinstance(entry, dict):
                names |= _flatten(entry)
    elif isinstance(data, dict):
        for _, entry in zip(range(SAMPLE_ROWS), data.values()):
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
    wanted += [("vote", name) for name in (config.votes.columns if config.votes is not None else [])]
    return [(role, name) for role, name in wanted if name is not None and name not in found]


def listing(found: set[str], limit: int = 40) -> str:
    """Column names for an error message, sorted, the first ``limit`` of them."""
    shown = sorted(found)
    return (", ".join(shown[:limit]) + (f", ... ({len(shown)} in all)" if len(shown) > limit else "")) or "(none)"
