"""Read-only SQL over a project database or its snapshots: what ``thresher sql`` runs.

Three locks, each enough on its own for the bypasses we know of:

1. the statements are parsed (``duckdb.extract_statements``) and only reads run: SELECT (with
   WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE) and EXPLAIN of a SELECT; ATTACH, DETACH, USE, COPY,
   EXPORT, INSTALL, LOAD, SET, PRAGMA, CALL, CREATE, INSERT, UPDATE, DELETE and the rest are refused
   before anything runs;
2. the database is opened read-only (snapshots: an in-memory catalogue of views);
3. external access is off (no files, no network, no extension installs) but for the snapshot
   directory thresher wrote, and the configuration is locked so no statement can turn it back on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

READS = (duckdb.StatementType.SELECT,)
_EXPLAIN = re.compile(r"^\s*explain\s+(analy[sz]e\s+)?", re.IGNORECASE)


class ReadOnlySQLError(ValueError):
    """The query holds a statement that is not a read."""


def _is_read(statement: Any) -> bool:
    if statement.type in READS:
        return True
    if statement.type == duckdb.StatementType.EXPLAIN:  # EXPLAIN ANALYZE runs what it explains
        inner = duckdb.extract_statements(_EXPLAIN.sub("", statement.query, count=1))
        return len(inner) == 1 and inner[0].type in READS
    return False


def read_statements(query: str) -> list[Any]:
    """The statements of ``query``, if every one is a read; else :class:`ReadOnlySQLError`.

    >>> [s.type.name for s in read_statements("select 1; from range(2)")]
    ['SELECT', 'SELECT']
    >>> read_statements("select 1; delete from items")
    Traceback (most recent call last):
    ...
    thresher.storage.sql.ReadOnlySQLError: thresher sql is read-only: only statements that read are run (SELECT, WITH, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN); statement 2 is DELETE: delete from items
    """
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise ReadOnlySQLError(str(exc)) from None
    if not statements:
        raise ReadOnlySQLError("The query is empty.")
    for number, statement in enumerate(statements, 1):
        if not _is_read(statement):
            text = " ".join(statement.query.split())
            raise ReadOnlySQLError(
                "thresher sql is read-only: only statements that read are run (SELECT, WITH, SHOW, DESCRIBE, "
                "SUMMARIZE, EXPLAIN); "
                f"statement {number} is {statement.type.name}: {text[:200]}"
            )
    return statements


def lock_down(con: duckdb.DuckDBPyConnection, *, allowed_directories: Sequence[str | Path] = ()) -> None:
    """Turn off external access (files, network, extension installs) but ``allowed_directories``,
    then lock the configuration so no statement can change it back."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    if allowed_directories:
        listed = ", ".join("'" + str(Path(d).resolve()).replace("'", "''") + "/'" for d in allowed_directories)
        con.execute(f"SET allowed_directories = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run_read_only(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple]]:
    """Run the reads of ``query`` on a locked-down connection; the last one's columns and rows."""
    statements = read_statements(query)
    columns: list[str] = []
    rows: list[tuple] = []
    for statement in statements:
        relation = con.sql(statement.query)
        if relation is not None:
            columns, rows = relation.columns, relation.fetchall()
    return columns, rows
