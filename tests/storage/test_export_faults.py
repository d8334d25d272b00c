"""An export that fails while writing shards (a full disk, a file-size limit, an I/O error) fails with
its real cause, records a ``failed`` run with it, leaves no staging directory and the previous export
intact; the next run starts clean."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import minimal_config

pytestmark = pytest.mark.slow


def _pipeline(tmp_path: Path, shared_data: Path, out: Path):
    import thresher

    config = minimal_config(tmp_path, shared_data)
    return thresher.Pipeline(config, db=str(tmp_path / "t.duckdb"), out_dir=str(out))


def _export_runs(tmp_path: Path) -> list[tuple[str, str | None]]:
    from thresher.storage.schema import connect

    con = connect(tmp_path / "t.duckdb", read_only=True)
    try:
        return con.execute("SELECT status, error FROM runs WHERE stage = 'export' ORDER BY started_at").fetchall()
    finally:
        con.close()


def test_an_error_while_shards_are_written_is_reported_as_it_is(tmp_path, shared_data, monkeypatch):
    """Injected (the one mock here: an I/O error cannot be made on demand otherwise): the second shard's
    write raises ENOSPC. Before, the open query result made every cleanup fail and the error read
    'ResourceInUseException: connection has an open result'."""
    import importlib

    export_module = importlib.import_module("thresher.storage.export")  # the module (the package exports the function)

    out = tmp_path / "export"
    pipe = _pipeline(tmp_path, shared_data, out)
    pipe.run()
    before = (out / ".manifest.json").read_text()
    real_write = export_module._ShardWriter.write
    calls = {"n": 0}

    def failing_write(self, table):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, table)

    kept = export_module._kept_rows  # small batches: the failure comes while the query's result is open
    monkeypatch.setattr(export_module._ShardWriter, "write", failing_write)
    monkeypatch.setattr(export_module, "_kept_rows", lambda con, batch_rows=50: kept(con, batch_rows))
    with pytest.raises(OSError, match="No space left on device"):
        pipe.run_stage("export", force=True)
    assert calls["n"] == 2
    status, error = _export_runs(tmp_path)[-1]
    assert status == "failed" and "No space left on device" in error and "open result" not in error
    assert (out / ".manifest.json").read_text() == before  # the previous export is untouched
    assert not list(tmp_path.glob(".export.tmp-*")) and not list(tmp_path.glob(".export.old-*"))
    monkeypatch.undo()
    assert pipe.run_stage("export", force=True)["rows"] > 0
    assert [s for s, _ in _export_runs(tmp_path)] == ["completed", "failed", "completed"]


def test_a_really_full_disk(tmp_path, shared_data):
    """The export directory on a 16 KiB tmpfs (root and mount needed, else skipped): the run fails with
    the system's own 'No space left on device' and the tmpfs is left empty."""
    full = tmp_path / "full"
    full.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(full)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        pipe = _pipeline(tmp_path, shared_data, full / "export")
        with pytest.raises(OSError) as error:
            pipe.run()
        assert error.value.errno in (errno.ENOSPC, errno.EFBIG), error.value
        status, message = _export_runs(tmp_path)[-1]
        assert status == "failed" and ("No space left on device" in message or "too large" in message), message
        assert list(full.iterdir()) == []
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)
