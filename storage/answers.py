"""Crowd answers as they come: a long file, one row per (item, worker, answer), stored as votes.

Crowdsourcing platforms and public crowd sets (RTE, web search relevance, the quiz sets) give answers
in long form. A source's ``answers`` reads such a file next to the source's items: each worker becomes
an LF of ``source_votes`` by name (no list of workers to keep), each answer is parsed as a label is
(class name or id, through the source's ``label_map``). Nothing is dropped silently: an answer for an
item the source does not have, an answer that is not a class, a row without one of the three fields,
a worker answering an item twice differently, or an exact repeat is a reject with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pyarrow as pa
from pydantic import Field

from thresher.core.classes import parse_class
from thresher.core.config import StageConfig

if TYPE_CHECKING:
    from thresher.storage.ingest import SourceConfig, SourceSummary


class AnswerColumns(StageConfig):
    """The columns of a long answers file (nested JSON fields with dots, as a source's columns)."""

    item: str = "item"  # the item's id, as the source's ``columns.id`` holds it
    worker: str = "worker"  # who answered: becomes the LF name
    answer: str = "answer"  # a class name or id (through the source's label_map)


class AnswersConfig(StageConfig):
    """A long file of crowd answers for the items of one source."""

    path: str
    format: Literal["csv", "jsonl", "json", "parquet"] | None = None  # None: from the extension
    columns: AnswerColumns = AnswerColumns()
    delimiter: str | None = Field(None, min_length=1, max_length=1)  # None: a tab for .tsv, else a comma
    abstain: str | int | None = None  # an answer value that means "no answer" (as text, like label_map keys)


def answers_source(source: SourceConfig) -> SourceConfig:
    """The answers file as a source config, so that the items' file readers (and their rejects) read it."""
    from thresher.storage.ingest import SourceConfig

    answers = source.answers
    assert answers is not None
    return SourceConfig(path=answers.path, format=answers.format, dataset=source.dataset,
                        delimiter=answers.delimiter, max_field_bytes=source.max_field_bytes,
                        label_map=source.label_map)


def ingest_answers(con: duckdb.DuckDBPyConnection, source: SourceConfig, classes: list[str],
                   summary: SourceSummary) -> None:
    """Read ``source.answers`` into ``source_votes`` (worker = LF, answer = vote) and its bad rows into
    ``rejects``, counting both in ``summary``. Idempotent; the caller owns the transaction."""
    from thresher.storage.ingest import _READERS, Reject, _label_key, _lookup, _store_rejects

    answers = source.answers
    assert answers is not None
    path = Path(answers.path)
    config = answers_source(source)
    names = answers.columns
    abstain = None if answers.abstain is None else _label_key(answers.abstain)
    rejects: list[Reject] = []
    rows: dict[tuple[str, str], tuple[int, int]] = {}  # (item id, worker) -> (vote, line)
    for parsed in _READERS[config.resolved_format(path)](path, config, summary):
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
            vote = parse_class(source.mapped_label(values["answer"]), classes)
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
    from thresher.storage.ingest import _READERS, SourceSummary

    if not lines:
        return {}
    scratch = SourceSummary(source=str(path))
    return {parsed.line: parsed.raw for parsed in _READERS[config.resolved_format(path)](path, config, scratch)
            if parsed.line in lines}
