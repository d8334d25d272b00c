"""`thresher sql` is read-only: every bypass we know of leaves the database byte-identical.

Each query runs through the CLI (typer's runner, in-process; the headline ATTACH bypass also as a
real subprocess) against a real project database and, for the snapshot path, while another
process holds the write lock.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thresher.storage.repo import run_stage
from thresher.storage.schema import connect
from thresher.storage.snapshot import snapshot_dir
from thresher.storage.sql import ReadOnlySQLError, read_statements
from thresher.cli import app

runner = CliRunner()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its sha256."""
    return {str(p.relative_to(directory)): digest(p) for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project database with three items and a snapshot, plus an empty other database."""
    db = tmp_path / "thresher.duckdb"

    def work(con, record) -> None:
        con.execute("INSERT INTO items (item_id, item_seq, dataset, text, source, content_hash) "
                    "SELECT 'i' || i, i, 'd', 'text ' || i, 's', 'h' || i FROM range(1, 4) r(i)")
        record.summary = {"rows": 3}

    run_stage(str(db), work, run_id="r1", stage="ingest", config_hash="c")
    import duckdb

    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    return db


def bypasses(db: Path, tmp: Path) -> list[str]:
    other = tmp / "other.duckdb"
    return [
        f"ATTACH '{other}' AS o (READ_WRITE); USE o; DETACH thresher; ATTACH '{db}' AS w (READ_WRITE); "
        "DELETE FROM w.items",
        f"ATTACH '{db}' AS w (READ_WRITE)",
        "DELETE FROM items",
        "select 1; DELETE FROM items",
        "/* a comment */ DROP TABLE items",
        "UPDATE items SET text = 'x'",
        "INSERT INTO items SELECT * FROM items",
        "CREATE TABLE t AS SELECT 1",
        "CREATE TEMP TABLE t AS SELECT 1",
        "CREATE MACRO m(x) AS x",
        f"COPY items TO '{tmp / 'leak.csv'}'",
        f"COPY (SELECT * FROM items) TO '{tmp / 'leak.parquet'}' (FORMAT parquet)",
        f"EXPORT DATABASE '{tmp / 'dump'}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        f"SET enable_external_access = true; ATTACH '{other}' AS o",
        "RESET lock_configuration",
        "PRAGMA enable_profiling",
        "CALL checkpoint()",
        "CHECKPOINT",
        "VACUUM",
        "BEGIN TRANSACTION; DELETE FROM items; COMMIT",
        "EXPLAIN ANALYZE DELETE FROM items",
        "explain analyse CREATE TABLE t AS SELECT 1",
        "PREPARE p AS DELETE FROM items; EXECUTE p",
        "SET VARIABLE x = 1",
    ]


def test_every_statement_that_is_not_a_read_is_refused_and_the_file_is_unchanged(project: Path, tmp_path: Path):
    before, files = digest(project), tree(tmp_path)
    for query in bypasses(project, tmp_path):
        result = runner.invoke(app, ["sql", query, "--db", str(project)])
        assert result.exit_code == 1, (query, result.output)
        assert "error:" in result.output and "Success" not in result.output, (query, result.output)
        assert digest(project) == before, query
    assert tree(tmp_path) == files  # no file written, none removed (COPY, EXPORT, the snapshot)


def test_reads_that_touch_files_or_the_network_are_refused(project: Path):
    for query in ["select * from read_csv('/etc/passwd')", "select * from read_text('/etc/hostname')",
                  "select * from glob('/*')", "select * from 'http://127.0.0.1:1/x.parquet'",
                  f"select * from read_parquet('{snapshot_dir(project)}/items.parquet')"]:
        result = runner.invoke(app, ["sql", query, "--db", str(project)])
        assert result.exit_code == 1 and "disabled by configuration" in result.output, (query, result.output)


def test_reads_still_answer(project: Path):
    result = runner.invoke(app, ["sql", "with t as (select count(*) n from items) select n from t", "--db",
                                 str(project), "-f", "csv"])
    assert result.exit_code == 0 and result.output.splitlines() == ["n", "3"], result.output
    for query in ["show tables", "describe items", "summarize items", "explain select * from items",
                  "values (1)", "from items limit 1", "select 1; select count(*) from runs"]:
        result = runner.invoke(app, ["sql", query, "--db", str(project)])
        assert result.exit_code == 0, (query, result.output)


def test_the_attach_bypass_as_a_real_process(project: Path, tmp_path: Path):
    before = digest(project)
    query = bypasses(project, tmp_path)[0]
    done = subprocess.run([str(Path(sys.executable).parent / "thresher"), "sql", query, "--db", str(project)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stderr.count("error:") == 1, done.stdout + done.stderr
    assert "ATTACH" in done.stderr and digest(project) == before
    con = connect(project, read_only=True)
    assert con.execute("select count(*) from items").fetchall() == [(3,)]
    con.close()


def test_snapshot_answers_are_read_only_too(project: Path, tmp_path: Path):
    """While a writer holds the database, `thresher sql` reads the snapshot, and refuses writes there."""
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(120)", str(project)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        snapshots = tree(snapshot_dir(project))
        result = runner.invoke(app, ["sql", "select count(*) as n from items", "--db", str(project), "-f", "csv"])
        assert result.exit_code == 0 and "snapshot" in result.output and "\n3\n" in result.output, result.output
        for query in ["CREATE TABLE t AS SELECT 1", "DROP VIEW items", f"COPY items TO '{snapshot_dir(project)}/x.csv'",
                      "select * from read_csv('/etc/passwd')", *bypasses(project, tmp_path)[:3]]:
            result = runner.invoke(app, ["sql", query, "--db", str(project)])
            assert result.exit_code == 1 and "Success" not in result.output, (query, result.output)
        assert tree(snapshot_dir(project)) == snapshots
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)


@pytest.mark.parametrize("query", ["", "   ;  ", "selec 1"])
def test_an_empty_or_unparseable_query_is_a_clear_error(query: str):
    with pytest.raises(ReadOnlySQLError):
        read_statements(query)


def test_sql_takes_the_config_and_cuts_long_cells_only_on_a_terminal(project: Path, tmp_path: Path, shared_data: Path):
    import os
    import pty

    from tests.conftest import minimal_config

    config = minimal_config(tmp_path, shared_data, extra=f'db: "{project}"')
    long_value = "select repeat('x', 500) as long, count(*) as n from items"
    piped = runner.invoke(app, ["sql", long_value, str(config)])  # not a terminal: CSV, whole values
    assert piped.exit_code == 0, piped.output
    assert piped.output.splitlines() == ["long,n", "x" * 500 + ",3"]
    assert runner.invoke(app, ["sql", "select 1 as one", str(config), "--db", str(tmp_path / "absent.duckdb")]).exit_code == 1

    leader, follower = pty.openpty()  # a real terminal: a table, the long cell cut with an ellipsis
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    done = subprocess.run([sys.executable, "-m", "thresher.cli", "sql", long_value, str(config)], stdout=follower,
                          stderr=subprocess.PIPE, env=env, timeout=300)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    text = shown.decode("utf-8", "replace")
    assert done.returncode == 0, done.stderr
    assert "…" in text and "x" * 100 not in text and "long" in text, text
