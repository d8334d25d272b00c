"""Reading and writing stage outputs: runs bookkeeping, checked per-run writes, transactions.

Every stage writes its rows for one ``run_id`` in one transaction (delete then insert), so a
re-run replaces instead of duplicating, and a failed stage leaves earlier outputs intact.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa



logger = logging.getLogger(__name__)

STAGES = ("ingest", "label", "detect", "reweight", "select", "export")


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The column names of a table, in order; an unknown table is an error."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise ValueError(f"The database has no table '{table}'.")
    return [r[0] for r in rows]


def replace_run_rows(con: duckdb.DuckDBPyConnection, table: str, run_id: str, data: pa.Table | Iterable[pa.Table],
                     *, stage: str | None = None) -> int:
    """Replace the rows of ``run_id`` (and ``stage``, for tables shared by stages) with ``data``.

    ``data`` is one table or batches of it (built one at a time, so a run's rows need not all be in
    memory at once), each with exactly the table's columns, ``run_id`` included. Call it inside
    :func:`transaction` so that the delete and the inserts land together. Returns the rows written.
    """
    expected = table_columns(con, table)

    def check(batch: pa.Table) -> pa.Table:
        if sorted(batch.column_names) != sorted(expected):
            raise ValueError(
                f"Rows written to '{table}' must have the columns {expected}. "
                f"Got {batch.column_names} instead."
            )
        return batch

    batches = [check(data)] if isinstance(data, pa.Table) else (check(batch) for batch in data)
    if stage is None:
        con.execute(f'DELETE FROM "{table}" WHERE run_id = ?', [run_id])
    else:
        con.execute(f'DELETE FROM "{table}" WHERE run_id = ? AND stage = ?', [run_id, stage])
    columns = ", ".join(f'"{c}"' for c in expected)
    written = 0
    for batch in batches:  # one table is checked before the delete; batches as they come (in a transaction)
        # Scanned as a relation, not registered: in a transaction a registered table stays referenced
        # until the commit, so every batch would stay in memory.
        con.from_arrow(batch).query("_rows_to_write", f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM _rows_to_write')
        written += batch.num_rows
    return written


@dataclass
class StageRun:
    """The ``runs`` row of one stage execution; the stage fills ``summary``."""

    run_id: str
    stage: str
    config_hash: str
    summary: dict[str, Any] = field(default_factory=dict)
    input_run_id: str | None = None


@contextmanager
def stage_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    stage: str,
    config_hash: str,
    flow_run_id: str | None = None,
) -> Iterator[StageRun]:
    """Record a stage execution in ``runs``: running, then completed or failed with the error.

    The status writes are their own transactions, so a failure is recorded even though the
    stage's own transaction was rolled back.
    """
    if stage not in STAGES:
        raise ValueError(f"The 'stage' parameter must be one of {STAGES}. Got {stage!r} instead.")
    mark_interrupted(con, by_run=run_id)
    con.execute(
        "INSERT OR REPLACE INTO runs (run_id, stage, config_hash, started_at, status, flow_run_id) "
        "VALUES (?, ?, ?, now(), 'running', ?)",
        [run_id, stage, config_hash, flow_run_id],
    )
    record = StageRun(run_id, stage, config_hash)
    try:
        yield record
    except BaseException as exc:
        con.execute(
            "UPDATE runs SET status = 'failed', ended_at = now(), error = ? WHERE run_id = ? AND stage = ?",
            [f"{type(exc).__name__}: {exc}", run_id, stage],
        )
        raise
    con.execute(
        "UPDATE runs SET status = 'completed', ended_at = now(), summary = ?, input_run_id = ? "
        "WHERE run_id = ? AND stage = ?",
        [json.dumps(record.summary, default=str), record.input_run_id, run_id, stage],
    )


def mark_interrupted(con: duckdb.DuckDBPyConnection, *, by_run: str) -> int:
    """Mark every ``running`` row ``interrupted``; return how many there were.

    Call it holding the write lock: DuckDB admits one writing process, and a stage runs only in
    the process that holds it, so a ``running`` row seen then belongs to a process that died
    (``kill -9``, a power cut) before it could record its end.
    """
    stale = con.execute("SELECT run_id, stage FROM runs WHERE status = 'running'").fetchall()
    if stale:
        con.execute(
            "UPDATE runs SET status = 'interrupted', ended_at = now(), error = ? WHERE status = 'running'",
            [f"interrupted: the process running it ended before the stage finished (found by run {by_run})"],
        )
        logger.warning("Marked %d stale running stage(s) interrupted: %s", len(stale),
                       ", ".join(f"{stage} {run}" for run, stage in stale))
    return len(stale)


def input_run(con: duckdb.DuckDBPyConnection, run_id: str, stage: str) -> str:
    """The upstream run id that the completed ``stage`` of ``run_id`` read."""
    rows = con.execute(
        "SELECT input_run_id FROM runs WHERE run_id = ? AND stage = ? AND status = 'completed'", [run_id, stage]
    ).fetchall()
    if not rows or rows[0][0] is None:
        raise LookupError(f"Run '{run_id}' has no completed '{stage}' stage with a recorded input run.")
    return rows[0][0]


def run_summary(con: duckdb.DuckDBPyConnection, run_id: str, stage: str) -> dict[str, Any]:
    """The stored summary of a completed stage of ``run_id``."""
    rows = con.execute(
        "SELECT summary FROM runs WHERE run_id = ? AND stage = ? AND status = 'completed'", [run_id, stage]
    ).fetchall()
    if not rows or rows[0][0] is None:
        raise LookupError(f"Run '{run_id}' has no completed '{stage}' stage.")
    return json.loads(rows[0][0])


def detector_in_use(con: duckdb.DuckDBPyConnection, detect_run: str) -> str:
    """The noise detector whose flags the completed detect run ``detect_run`` acts on."""
    return run_summary(con, detect_run, "detect").get("use", "confident_learning")


def latest_run(con: duckdb.DuckDBPyConnection, stage: str) -> str:
    """The run id of the most recent completed execution of ``stage``.

    Raises a clear error naming the command to run when the stage has never completed.
    """
    rows = con.execute(
        "SELECT run_id FROM runs WHERE stage = ? AND status = 'completed' ORDER BY ended_at DESC LIMIT 1",
        [stage],
    ).fetchall()
    if not rows:
        raise LookupError(
            f"No completed '{stage}' run in this database. Run `thresher {stage} CONFIG` "
            f"(or `thresher run CONFIG`) first."
        )
    return rows[0][0]


def run_stage(
    db: str, work: Callable[[duckdb.DuckDBPyConnection, StageRun], None], *, run_id: str, stage: str,
    config_hash: str, flow_run_id: str | None = None, snapshot: bool = True, lock_timeout: float | None = None,
    progress: bool = False,
) -> StageRun:
    """Open the project database, run ``work(con, record)`` as one recorded stage, close it.

    With ``snapshot`` the tables the stage wrote are then copied to Parquet for readers that come
    while a later stage holds the database (see :mod:`thresher.storage.snapshot`), whether it succeeded or not.

    ``work`` fills ``record.summary`` (and ``record.input_run_id``). If another process holds the
    file (a reader's query), the stage waits for it up to ``lock_timeout`` seconds (see
    :mod:`thresher.storage.lock`). The connection is closed at the end so other processes can read the file
    between stages. On failure the locals of
    finished frames are cleared before re-raising: a kept exception (Prefect keeps failed states)
    must not keep the database connection alive.
    """
    from thresher.storage.lock import wait_for
    from thresher.storage.lock import lock_timeout as timeout_of
    from thresher.storage.schema import connect
    from thresher.storage.snapshot import write_snapshot

    con = wait_for(lambda: connect(db), db, timeout=timeout_of(lock_timeout), purpose=f"run the {stage} stage",
                   progress=progress)
    try:
        with stage_run(con, run_id=run_id, stage=stage, config_hash=config_hash, flow_run_id=flow_run_id) as record:
            work(con, record)
        return record
    except BaseException as exc:
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        try:
            if snapshot:
                write_snapshot(con, db, stage=stage, run_id=run_id)
        finally:
            con.close()
            del con


def stored_lf_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """The ``lf_summary`` rows of one label run, as dicts, in LF order (read without Snorkel, for ``thresher lfs``),
    with each LF's accuracy on the items a person answered (``lf_reviewed``; None where it voted on none)."""
    relation = con.sql("SELECT s.* EXCLUDE (run_id), coalesce(r.reviewed_votes, 0) AS reviewed_votes, r.reviewed_accuracy "
                       "FROM lf_summary s LEFT JOIN lf_reviewed r USING (run_id, lf) WHERE s.run_id = $run ORDER BY s.lf",
                       params={"run": run_id})
    columns = relation.columns
    return [dict(zip(columns, row)) for row in relation.fetchall()]
