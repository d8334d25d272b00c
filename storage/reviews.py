"""Answers a person gave about items: stored at once in the ``reviews`` table, imported from a file, exported.

An answer is one row per (item, reviewer): the latest answer replaces that reviewer's earlier one,
``label`` NULL means "unsure". The ``reviewed`` view (schema 10) holds each item's latest labelled
answer; it wins over the denoised label in ``curated`` and in the export. Every write opens the
database for that write only, waiting for a running stage as stages wait for each other, and commits
before it returns, so an answer survives the process being killed right after.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from thresher.core.classes import parse_class

REVIEW_SOURCE = "review"  # the source of answers given on the review page


def _write(db: str | Path, work: Any, *, timeout: float | None = None) -> Any:
    """``work(con)`` in one transaction on a connection opened for it (waiting for another writer)."""
    from thresher.storage.connection import transaction
    from thresher.storage.lock import lock_timeout, wait_for
    from thresher.storage.schema import connect

    con = wait_for(lambda: connect(db), db, timeout=lock_timeout(timeout))
    try:
        with transaction(con):
            return work(con)
    finally:
        con.close()


def record_answer(db: str | Path, item_id: str, reviewer: str, label: int | None, *, shown_from: dict[str, Any] | None = None,
                  source: str = REVIEW_SOURCE, timeout: float | None = None) -> None:
    """Store ``reviewer``'s answer for ``item_id`` (``label`` None: unsure), replacing their earlier one."""
    if not reviewer.strip():
        raise ValueError("A review needs a reviewer name.")

    def work(con: duckdb.DuckDBPyConnection) -> None:
        if not con.execute("SELECT count(*) FROM items WHERE item_id = ?", [item_id]).fetchall()[0][0]:
            raise LookupError(f"No item {item_id!r} in this database.")
        con.execute("INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?, ?)",
                    [item_id, reviewer, label, datetime.now(timezone.utc).replace(tzinfo=None), source,
                     None if shown_from is None else json.dumps(shown_from)])

    _write(db, work, timeout=timeout)


def remove_answer(db: str | Path, item_id: str, reviewer: str, *, timeout: float | None = None) -> bool:
    """Take back ``reviewer``'s answer for ``item_id`` (undo); whether there was one."""
    def work(con: duckdb.DuckDBPyConnection) -> bool:
        found = con.execute("SELECT count(*) FROM reviews WHERE item_id = ? AND reviewer = ?", [item_id, reviewer]).fetchall()[0][0]
        con.execute("DELETE FROM reviews WHERE item_id = ? AND reviewer = ?", [item_id, reviewer])
        return bool(found)

    return bool(_write(db, work, timeout=timeout))


@dataclass
class ImportSummary:
    """What an import of answers did: rows read, answers stored, rows rejected by reason."""

    source: str
    rows: int = 0
    stored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "stored": self.stored, "rejected": dict(self.rejected)}


def _rows(path: Path) -> list[tuple[int, dict[str, Any], str]]:
    """(line, fields, raw text) of each row of a CSV/TSV or JSON Lines file."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if text.strip():
                try:
                    fields = json.loads(text)
                except json.JSONDecodeError:
                    fields = None
                rows.append((line, fields if isinstance(fields, dict) else {}, text))
        return rows
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        return [(reader.line_num, dict(row), ",".join(str(v) for v in row.values())) for row in reader]


def import_answers(db: str | Path, path: str | Path, classes: list[str], *, reviewer: str | None = None,
                   timeout: float | None = None) -> ImportSummary:
    """Store the answers of a CSV/TSV or JSON Lines file given elsewhere (another labeling tool).

    Each row names its item by ``item_id`` (thresher's) or ``id`` (yours, as the source gave it; with a
    ``dataset`` column where two datasets share ids), its ``label`` (a class name or id; empty: unsure) and
    optionally its ``reviewer`` (default: ``reviewer``, else the file's name). A row whose item or class is
    unknown is a reject with its reason (``rejects`` table), never dropped silently. Importing the same
    file again changes nothing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The answers file '{path}' does not exist.")
    rows = _rows(path)
    summary = ImportSummary(str(path), rows=len(rows))

    def work(con: duckdb.DuckDBPyConnection) -> None:
        known = {r[0]: r[0] for r in con.execute("SELECT item_id FROM items").fetchall()}
        yours: dict[tuple[str | None, str], list[str]] = {}
        for item_id, dataset in con.execute("SELECT item_id, dataset FROM items").fetchall():
            own = item_id[len(dataset) + 1:]
            yours.setdefault((None, own), []).append(item_id)
            yours.setdefault((dataset, own), []).append(item_id)
        stored, rejects = [], []
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        for line, fields, raw in rows:
            def reject(reason: str, detail: str) -> None:
                rejects.append((str(path), line, reason, detail, raw))
                summary.rejected[reason] = summary.rejected.get(reason, 0) + 1

            if fields.get("item_id") not in (None, ""):
                item = known.get(str(fields["item_id"]))
                if item is None:
                    reject("unknown_item", f"no item_id {fields['item_id']!r} in this database")
                    continue
            elif fields.get("id") not in (None, ""):
                matches = yours.get((fields.get("dataset") or None, str(fields["id"])), [])
                if len(matches) != 1:
                    reject("unknown_item" if not matches else "ambiguous_id",
                           f"id {fields['id']!r} names {len(matches)} items" + ("" if not matches else
                           f" ({', '.join(matches[:3])}); add a dataset column"))
                    continue
                item = matches[0]
            else:
                reject("missing_field", "no item_id or id")
                continue
            value = fields.get("label")
            try:
                label = None if value in (None, "") else parse_class(value, classes)
            except ValueError as exc:
                reject("unknown_class", str(exc))
                continue
            who = str(fields.get("reviewer") or reviewer or path.stem)
            stored.append((item, who, label, now, str(path), None))
        if stored:
            con.executemany("INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?, ?)", stored)
        if rejects:
            con.executemany("INSERT OR REPLACE INTO rejects (source, line, reason, detail, raw) VALUES (?, ?, ?, ?, ?)",
                            rejects)
        summary.stored = len(stored)

    _write(db, work, timeout=timeout)
    return summary


def export_answers(con: duckdb.DuckDBPyConnection, path: str | Path) -> int:
    """Write every answer (item_id, your id, dataset, label, label_name, reviewer, answered_at, source) as
    CSV, or JSON Lines for a ``.jsonl`` path; the number of answers. The CSV imports back unchanged."""
    path = Path(path)
    rows = con.execute(
        "SELECT r.item_id, substr(r.item_id, length(i.dataset) + 2) AS id, i.dataset, r.label, c.name AS label_name, "
        "r.reviewer, strftime(r.answered_at, '%Y-%m-%dT%H:%M:%S') AS answered_at, r.source "
        "FROM reviews r JOIN items i USING (item_id) LEFT JOIN classes c ON c.class_id = r.label "
        "ORDER BY r.answered_at, r.item_id, r.reviewer").fetchall()
    columns = ["item_id", "id", "dataset", "label", "label_name", "reviewer", "answered_at", "source"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for row in rows:
                handle.write(json.dumps(dict(zip(columns, row)), ensure_ascii=False) + "\n")
        else:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(["" if v is None else v for v in row] for row in rows)
    tmp.replace(path)
    return len(rows)
