"""What every stage flow shares: a Prefect task cached on the stage's inputs, artifacts, logging.

A stage runs as one Prefect task whose cache key hashes the stage's config hash and a snapshot of
its input data: the database's identity (when its schema was created), the items (count and last
``item_seq``) and the latest completed run of each upstream stage; ingest hashes its source files'
paths, sizes and modification times. Never a connection object. The task's result (the stage
summary) is persisted by Prefect, so an unchanged stage is not recomputed: the flow returns the
earlier summary, and downstream stages keep reading that run's rows. If those rows are gone (a
deleted database), the cache is refreshed and the stage runs. ``force=True`` always runs it.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from flows.artifacts import publish_stage, run_line

from storage.repo import run_stage
from thresher.config import PipelineConfig


def _read(db: str, query: Callable[[Any], Any], default: Any, *, timeout: float | None = None) -> Any:
    """``query(con)`` on a read-only connection to ``db``; ``default`` if it does not exist or cannot
    be opened (an older schema that read-only cannot migrate). A writer in another process is
    waited for (up to ``timeout``), as a stage waits: its answer would change what is read."""
    import duckdb

    from storage.lock import lock_timeout, wait_for
    from storage.schema import SchemaVersionError, connect

    if not Path(db).exists():
        return default
    try:
        con = wait_for(lambda: connect(db, read_only=True), db, timeout=lock_timeout(timeout), purpose="read")
    except (duckdb.Error, SchemaVersionError):
        return default
    try:
        return query(con)
    finally:
        con.close()


def database_state(db: str, upstream: tuple[str, ...], *, timeout: float | None = None) -> dict[str, Any]:
    """The snapshot of a stage's input data in ``db``: identity, items, upstream runs."""
    def query(con) -> dict[str, Any]:
        created = con.execute("SELECT min(applied_at) FROM schema_version").fetchall()[0][0]
        items = con.execute("SELECT count(*), max(item_seq) FROM items").fetchall()[0]
        runs = dict(con.execute("SELECT stage, run_id FROM latest_runs").fetchall())
        return {"db": str(created), "items": list(items), "upstream": {s: runs.get(s) for s in upstream}}

    return _read(db, query, {"db": None}, timeout=timeout)


def source_files(config: PipelineConfig) -> list[list[Any]]:
    """(path, size, mtime_ns) of every file the sources match: ingest's input snapshot."""
    files = []
    for source in config.sources:
        for path in sorted(glob.glob(source.path)):
            stat = os.stat(path)
            files.append([path, stat.st_size, stat.st_mtime_ns])
    return files


def cache_key(stage: str, config_hash: str, inputs: dict[str, Any]) -> str:
    text = json.dumps({"stage": stage, "config": config_hash, "inputs": inputs}, sort_keys=True, default=str)
    return f"thresher-{stage}-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@task(name="thresher-stage", cache_key_fn=lambda context, parameters: parameters["key"], persist_result=True)
def _stage_task(stage: str, key: str, execute: Callable[[], dict]) -> dict:
    return execute()


def _recorded_run(db: str, stage: str, key: str) -> dict[str, Any] | None:
    """The summary of a completed run of ``stage`` recorded with cache key ``key``, if any."""
    rows = _read(db, lambda con: con.execute(
        "SELECT run_id, summary FROM runs WHERE stage = ? AND status = 'completed' "
        "AND summary->>'cache_key' = ? ORDER BY ended_at DESC LIMIT 1", [stage, key]).fetchall(), [])
    return {"run_id": rows[0][0], **json.loads(rows[0][1])} if rows else None


# Every flow's state hooks: the line `thresher deploy` prints per run.
HOOKS = {"on_completion": [run_line], "on_failure": [run_line], "on_crashed": [run_line]}


def run_stage_task(
    config: PipelineConfig, *, stage: str, run_id: str, config_hash: str, work: Callable,
    upstream: tuple[str, ...] | None = (), inputs: dict[str, Any] | None = None, cache: bool = True,
    force: bool = False, retries: int = 0, retry_on: tuple[type[BaseException], ...] = (),
    extra: Callable[[str], dict[str, Any]] | None = None, progress: bool = False,
) -> dict[str, Any]:
    """Run one stage as a cached Prefect task; return its summary (``cached: true`` when reused).

    ``upstream=None`` leaves the database out of the key (ingest: the items are its own output; a
    new database is caught by the check that the reused run exists in it). The key is also stored
    in the run's summary, and the task looks there first: a process killed after the stage
    committed but before Prefect persisted its result does not recompute it. ``extra(run_id)``
    adds fields read back from the database (the LF table). ``retries`` retry the task only for the
    exception classes in ``retry_on`` (known transient errors): a refused API key is not retried.
    """
    logger = get_run_logger()
    key = None
    if cache:
        state = {} if upstream is None else database_state(config.db, upstream, timeout=config.db_lock_timeout)
        key = cache_key(stage, config_hash, {**state, **(inputs or {})})

    def keyed_work(con, record) -> None:
        work(con, record)
        if key is not None:
            record.summary["cache_key"] = key

    def execute() -> dict:
        # A run committed with this key is this task's result, even if Prefect never persisted it
        # (the process died in between): reuse it rather than compute it again.
        recorded = None if key is None or force else _recorded_run(config.db, stage, key)
        if recorded is None:
            record = run_stage(config.db, keyed_work, run_id=run_id, stage=stage, config_hash=config_hash,
                               flow_run_id=flow_run.id, snapshot=config.sql_snapshots,
                               lock_timeout=config.db_lock_timeout, progress=progress)
            recorded = {"run_id": record.run_id, **record.summary}
        return {**recorded, **(extra(recorded["run_id"]) if extra else {})}

    if key is None:
        summary = execute()
    else:
        def transient(task: Any, task_run: Any, state: Any) -> bool:
            return isinstance(state.data, retry_on)

        stage_task = _stage_task.with_options(name=f"thresher-{stage}", retries=retries if retry_on else 0,
                                              retry_delay_seconds=5, retry_condition_fn=transient,
                                              refresh_cache=force)
        summary = stage_task(stage, key, execute)
        if summary["run_id"] != run_id and _recorded_run(config.db, stage, key) is None:
            summary = stage_task.with_options(refresh_cache=True)(stage, key, execute)  # its rows are gone
        if summary["run_id"] != run_id:
            logger.info("%s: inputs and config unchanged; reusing run %s (cached)", stage, summary["run_id"])
            summary = {**summary, "cached": True}
    publish_stage(stage, summary, summary.get("lf_summary"))
    logger.info("%s %s: %s", stage, summary["run_id"], {k: v for k, v in summary.items() if k != "lf_summary"})
    return summary


def stored_lf_table(db: str, run_id: str) -> list[dict[str, Any]]:
    """The LF summary of a label run, read back from the database."""
    from labeling.analysis import stored_lf_summary

    return _read(db, lambda con: stored_lf_summary(con, run_id), [])


def unfinished_llm_work(db: str) -> bool:
    """Whether the latest label run left prompts failed or unsent (budget): then it is not reused."""
    row = _read(db, lambda con: con.execute("SELECT r.summary->'llm' FROM runs r JOIN latest_runs l USING (stage, run_id) "
                                            "WHERE stage = 'label'").fetchall(), [])
    llm = json.loads(row[0][0]) if row and row[0][0] else None
    return bool(llm) and (llm.get("failed", 0) > 0 or llm.get("budget_stopped") is not None)
