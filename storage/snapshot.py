"""Read snapshots: SQL on completed stages while a pipeline is writing the database.

DuckDB allows one writer process and no outside readers meanwhile. So after each stage the tables
it wrote are copied to Parquet next to the database (``<db stem>.snapshot/<table>.parquet``, each
file replaced atomically), with a manifest holding the view definitions and what each file
contains. ``thresher sql`` reads the database itself when it can and falls back to these snapshots
when a running pipeline holds the lock: the answer then covers exactly the completed stages.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

logger = logging.getLogger(__name__)

# The tables each stage writes (``runs`` always changes).
STAGE_TABLES: dict[str, tuple[str, ...]] = {
    "ingest": ("items", "rejects", "source_votes", "vote_counts", "classes"),
    "label": ("lfs", "lf_votes", "lf_progress", "lf_summary", "labels", "prompt_votes", "llm_cache", "llm_calls"),
    "detect": ("noise_scores", "weights", "embeddings"),
    "reweight": ("weights",),
    "select": ("selections", "embeddings"),
    "export": ("exports", "excluded"),
}
MANIFEST = "manifest.json"


def snapshot_dir(db: str | Path) -> Path:
    """Where the snapshots of database ``db`` live: ``thresher.duckdb`` -> ``thresher.snapshot/``."""
    path = Path(db)
    return path.with_name(path.stem + ".snapshot")


def _base_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal "
        "ORDER BY table_name").fetchall()]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def write_snapshot(con: duckdb.DuckDBPyConnection, db: str | Path, *, stage: str, run_id: str) -> list[str]:
    """Copy the tables ``stage`` wrote (every table on the first snapshot) to Parquet; return them.

    Each file is written beside its target and renamed over it, and the manifest last, so a reader
    never sees a half-written file; a crash mid-way leaves the previous snapshot of that table.
    """
    directory = snapshot_dir(db)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"tables": {}}
    tables = _base_tables(con)
    wanted = set(STAGE_TABLES.get(stage, ())) | {"runs", "reviews"}  # reviews are written outside the stages
    todo = [t for t in tables if t in wanted or t not in manifest["tables"]]
    now = datetime.now(timezone.utc).isoformat()
    for table in todo:
        target = directory / f"{table}.parquet"
        tmp = directory / f"{table}.parquet.tmp"
        con.execute(f"COPY (SELECT * FROM \"{table}\") TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, target)
        manifest["tables"][table] = {"written_at": now, "stage": stage, "run_id": run_id}
    manifest["views"] = [list(r) for r in con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = current_database() AND NOT internal "
        "ORDER BY view_name").fetchall()]
    manifest["written_at"] = now
    _write_json(manifest_path, manifest)
    logger.info("Snapshot after %s %s: %d tables to %s", stage, run_id, len(todo), directory)
    return todo


def open_snapshot(db: str | Path) -> tuple[duckdb.DuckDBPyConnection, dict[str, Any]]:
    """An in-memory connection whose tables and views read the snapshots of ``db``."""
    directory = snapshot_dir(db)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"No snapshot of '{db}' at '{directory}': no stage has completed yet.")
    manifest = json.loads(manifest_path.read_text())
    con = duckdb.connect()
    for table in manifest["tables"]:
        con.execute(f"CREATE VIEW \"{table}\" AS SELECT * FROM read_parquet('{directory / table}.parquet')")
    pending = list(manifest["views"])
    while pending:  # views may read views: create them in dependency order
        failed = []
        for name, sql in pending:
            try:
                con.execute(sql)
            except duckdb.CatalogException:
                failed.append((name, sql))
        if len(failed) == len(pending):
            raise RuntimeError(f"Cannot recreate the snapshot views {[n for n, _ in failed]} of '{db}'.")
        pending = failed
    return con, manifest
