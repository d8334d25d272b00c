"""Read-only looks at the project database that decide whether a stage must run: its inputs' state
and the run recorded under a cache key.

:func:`read_only` opens the file read-only for one function of the connection and closes it at once;
a writer in another process is waited for (up to ``timeout``), as a stage waits: its answer would
change what is read. The queries below take that connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def read_only(db: str, query: Callable[[Any], T], default: T, *, timeout: float | None = None) -> T:
    """``query(con)`` on a read-only connection to ``db``; ``default`` if the file does not exist or
    cannot be opened read-only (an older schema that read-only cannot migrate)."""
    import duckdb

    from thresher.storage.lock import lock_timeout, wait_for
    from thresher.storage.schema import SchemaVersionError, connect

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


def database_state(con: Any, upstream: tuple[str, ...]) -> dict[str, Any]:
    """The snapshot of a stage's input data: the database's identity (when its schema was created), the
    items (count and last ``item_seq``) and the latest completed run of each upstream stage."""
    created = con.execute("SELECT min(applied_at) FROM schema_version").fetchall()[0][0]
    items = con.execute("SELECT count(*), max(item_seq) FROM items").fetchall()[0]
    runs = dict(con.execute("SELECT stage, run_id FROM latest_runs").fetchall())
    return {"db": str(created), "items": list(items), "upstream": {s: runs.get(s) for s in upstream}}


NO_DATABASE: dict[str, Any] = {"db": None}  # the input state when the database does not exist yet


def recorded_run(con: Any, stage: str, key: str) -> dict[str, Any] | None:
    """The summary (with its ``run_id``) of the latest completed run of ``stage`` recorded with cache key ``key``."""
    rows = con.execute(
        "SELECT run_id, summary FROM runs WHERE stage = ? AND status = 'completed' "
        "AND summary->>'cache_key' = ? ORDER BY ended_at DESC LIMIT 1", [stage, key]).fetchall()
    return {"run_id": rows[0][0], **json.loads(rows[0][1])} if rows else None


def latest_summary(con: Any, stage: str) -> dict[str, Any] | None:
    """The summary of the latest completed run of ``stage``, if any."""
    rows = con.execute(
        "SELECT r.summary FROM runs r JOIN latest_runs l USING (stage, run_id) WHERE stage = ?", [stage]).fetchall()
    return json.loads(rows[0][0]) if rows and rows[0][0] else None
