import duckdb
import pytest

from thresher.storage.schema import SCHEMA_VERSION, SchemaVersionError, connect, schema_version


def test_new_database_has_every_table(db_path):
    con = connect(db_path)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"items", "rejects", "runs", "votes", "labels", "noise_scores", "weights", "excluded", "exports"} <= tables
    assert schema_version(con) == SCHEMA_VERSION
    con.close()
    # Re-opening does not migrate twice.
    con = connect(db_path)
    assert con.execute("SELECT count(*) FROM schema_version").fetchall()[0][0] == SCHEMA_VERSION
    con.close()


def test_newer_schema_is_refused(db_path):
    connect(db_path).close()
    raw = duckdb.connect(str(db_path))
    raw.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION + 1])
    raw.close()
    with pytest.raises(SchemaVersionError, match="Upgrade thresher"):
        connect(db_path)


def test_read_only_needs_an_existing_database(tmp_path):
    with pytest.raises(FileNotFoundError, match="No thresher database"):
        connect(tmp_path / "missing.duckdb", read_only=True)


def _database_at(path, version: int) -> duckdb.DuckDBPyConnection:
    """A raw connection to a new database migrated up to ``version`` only (as an older thresher left it)."""
    from thresher.storage.schema import MIGRATIONS

    raw = duckdb.connect(str(path))
    raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)")
    for number, sql in enumerate(MIGRATIONS[:version], start=1):
        raw.execute(sql)
        raw.execute("INSERT INTO schema_version (version) VALUES (?)", [number])
    return raw


def test_version_6_drops_the_per_item_keys_and_keeps_the_rows(tmp_path):
    """A version-5 database with items and labels migrates without losing a row or a default, and
    ingest still refuses repeated ids once no key does."""
    from thresher.storage.ingest import IngestConfig, SourceConfig, ingest

    path = tmp_path / "v5.duckdb"
    raw = _database_at(path, 5)
    raw.execute("INSERT INTO items (item_id, item_seq, dataset, text, source, content_hash) VALUES ('a', 1, 'd', 'old', 's', 'h')")
    raw.execute("INSERT INTO labels VALUES ('r', 'a', 1, [0.2, 0.8], 0.8, 0.5, TRUE)")
    raw.close()
    con = connect(path)
    assert con.execute("SELECT item_id, text, ingested_at IS NOT NULL FROM items").fetchall() == [("a", "old", True)]
    assert con.execute("SELECT run_id, item_id, probs FROM labels").fetchall() == [("r", "a", [0.2, 0.8])]
    keyed = {r[0] for r in con.execute("SELECT table_name FROM information_schema.table_constraints "
                                       "WHERE constraint_type = 'PRIMARY KEY'").fetchall()}
    assert not keyed & {"items", "labels", "noise_scores", "weights", "excluded", "selections", "embeddings"}
    (tmp_path / "rows.csv").write_text("id,text\nb,new\nb,new\nc,other\nb,changed\n")
    config = IngestConfig(classes=["x", "y"], sources=[SourceConfig(path=str(tmp_path / "rows.csv"), dataset="d",
                                                                    columns={"text": "text", "id": "id"})])
    first, second = ingest(con, config), ingest(con, config)
    assert (first.new_items, second.new_items, second.already_present) == (2, 0, 2)
    assert con.execute("SELECT item_id, count(*) FROM items GROUP BY 1 ORDER BY 1").fetchall() == [("a", 1), ("d:b", 1), ("d:c", 1)]
    con.close()


def test_release_buffers_hands_back_read_pages_and_keeps_the_limit(tmp_path):
    """After a scan DuckDB keeps the pages it read (up to its limit); released, they leave memory,
    the data stays, and the connection's configured limit is back."""
    from thresher.storage.schema import release_buffers

    con = connect(tmp_path / "t.duckdb")
    con.execute("CREATE TABLE big AS SELECT range AS i, repeat(md5(range::VARCHAR), 4) AS s FROM range(2000000)")
    con.execute("CHECKPOINT")
    limit = con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert con.sql("SELECT sum(length(s)) FROM big").fetchall()[0][0] == 2000000 * 128
    held = con.sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0]
    release_buffers(con)
    left = con.sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0]
    assert held > 50 * 2**20 and left < held / 4
    assert con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] == limit
    assert con.sql("SELECT count(*) FROM big").fetchall()[0][0] == 2000000
    con.close()


def test_rows_with_wrong_columns_are_refused_before_the_runs_rows_go(con):
    """replace_run_rows checks a table's columns before it deletes; batches replace a run whole."""
    import pyarrow as pa

    from thresher.storage.repo import replace_run_rows

    def rows(n: int, start: int = 0) -> pa.Table:
        return pa.table({"run_id": ["r"] * n, "item_id": [f"i{start + k}" for k in range(n)],
                         "label": pa.array([1] * n, pa.int32()), "probs": [[0.2, 0.8]] * n,
                         "confidence": [0.8] * n, "entropy": [0.5] * n, "covered": [True] * n,
                         "decided": [True] * n})

    assert replace_run_rows(con, "labels", "r", rows(3)) == 3
    with pytest.raises(ValueError, match="must have the columns"):
        replace_run_rows(con, "labels", "r", rows(2).drop_columns(["entropy"]))
    assert con.execute("SELECT count(*) FROM labels WHERE run_id = 'r'").fetchall() == [(3,)]
    assert replace_run_rows(con, "labels", "r", iter([rows(2), rows(2, start=2)])) == 4
    assert con.execute("SELECT count(*) FROM labels WHERE run_id = 'r'").fetchall() == [(4,)]


def test_version_7_marks_old_covered_labels_decided(tmp_path):
    """Labels written before the tie policy existed: covered items count as decided, the rest not,
    and the curated view shows the column."""
    path = tmp_path / "v6.duckdb"
    raw = _database_at(path, 6)
    raw.execute("INSERT INTO labels VALUES ('r', 'a', 1, [0.2, 0.8], 0.8, 0.5, TRUE), ('r', 'b', 0, [0.5, 0.5], 0.5, 0.7, FALSE)")
    raw.close()
    con = connect(path)
    assert con.execute("SELECT item_id, covered, decided FROM labels ORDER BY 1").fetchall() == [("a", True, True), ("b", False, False)]
    assert "decided" in {r[0] for r in con.execute("DESCRIBE curated").fetchall()}
    con.close()
