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
