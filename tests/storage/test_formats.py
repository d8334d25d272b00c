"""The input formats, one module each (storage/formats): every registered reader holds the same contract.

The same rows written in each format read back as the same fields, the columns a reader offers are
the rows' columns, and a bad row is a reject with its line and reason, never an exception or a gap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.storage.formats import EXTENSIONS, READERS, Format, Raw, Reject
from thresher.storage.ingest import SourceConfig, SourceSummary

ROWS = [{"id": "a1", "text": "first row", "topic": "x"}, {"id": "a2", "text": "second, with a comma", "topic": "y"},
        {"id": "a3", "text": "third \U0001f600 row", "topic": "x"}]


def _lines(path: Path, header: list[str], rows: list[str], bad: str | None) -> Path:
    """A text file of ``header`` and one line per row, with the ``bad`` line after the first row."""
    if bad is not None:
        rows = [rows[0], bad, *rows[1:]]
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return path


def _csv(path: Path, bad: bool) -> Path:
    rows = [f'{r["id"]},"{r["text"]}",{r["topic"]}' for r in ROWS]
    return _lines(path / "rows.csv", ["id,text,topic"], rows, "b1,too,many,fields" if bad else None)


def _jsonl(path: Path, bad: bool) -> Path:
    rows = [json.dumps(r, ensure_ascii=False) for r in ROWS]
    return _lines(path / "rows.jsonl", [], rows, '{"id": "b1", "text": ' if bad else None)


def _json(path: Path, bad: bool) -> Path:
    rows: list = list(ROWS)
    if bad:
        rows.insert(1, ["not", "an", "object"])
    path = path / "rows.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def _parquet(path: Path, bad: bool) -> Path:
    path = path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)  # a typed file has no malformed row to reject
    return path


def _wrench(path: Path, bad: bool) -> Path:
    data: dict = {str(i): {"data": {"text": r["text"]}, "id": r["id"], "topic": r["topic"], "weak_labels": [0, -1]}
                  for i, r in enumerate(ROWS)}
    if bad:
        data["7"] = "not an entry"
    path = path / "rows.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


WRITERS: dict[str, Callable[[Path, bool], Path]] = {
    "csv": _csv, "jsonl": _jsonl, "json": _json, "parquet": _parquet, "wrench": _wrench}


def test_every_format_is_registered_with_a_writer_here_and_its_extensions() -> None:
    assert set(READERS) == set(Format.__args__) == set(WRITERS)  # type: ignore[attr-defined]
    assert set(EXTENSIONS.values()) <= set(READERS)
    for name, reader in READERS.items():
        assert reader.name == name


def _text(fields: dict) -> str:
    return fields.get("text", fields.get("data.text"))


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_the_same_rows_read_back_from_every_format(tmp_path: Path, fmt: str) -> None:
    path = WRITERS[fmt](tmp_path, False)
    source = SourceConfig(path=str(path), dataset="d")
    assert source.resolved_format(path) == fmt
    read = list(READERS[fmt].read(path, source, SourceSummary(source=str(path))))
    assert all(isinstance(r, Raw) for r in read)
    assert [(r.fields["id"], _text(r.fields), r.fields["topic"]) for r in read] == \
        [(r["id"], r["text"], r["topic"]) for r in ROWS]
    assert len({r.line for r in read}) == len(ROWS)
    columns = READERS[fmt].columns(path, source)
    assert {"id", "topic"} <= columns and ({"text"} <= columns or {"data.text"} <= columns)
    rows = list(READERS[fmt].rows(path, source))  # what thresher init profiles
    assert [_text(r) for r in rows] == [r["text"] for r in ROWS] and "__key__" not in rows[0]


@pytest.mark.parametrize("fmt", sorted(set(READERS) - {"parquet"}))
def test_a_bad_row_is_a_reject_with_its_line_and_the_rest_still_read(tmp_path: Path, fmt: str) -> None:
    path = WRITERS[fmt](tmp_path, True)
    source = SourceConfig(path=str(path), dataset="d")
    read = list(READERS[fmt].read(path, source, SourceSummary(source=str(path))))
    rejects = [r for r in read if isinstance(r, Reject)]
    assert len(rejects) == 1 and rejects[0].reason in ("unparseable", "wrong_type") and rejects[0].line > 0
    assert rejects[0].source == str(path) and rejects[0].raw
    assert [_text(r.fields) for r in read if isinstance(r, Raw)] == [r["text"] for r in ROWS]
