"""CLI runs without a Prefect server configured run the stages in-process, without Prefect's temporary
server (pipeline/local.py): the same runs recorded, nothing of Prefect's server or flow engine loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import minimal_config

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys
from typer.testing import CliRunner
from thresher.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
loaded = [m for m in ("prefect.flows", "prefect.server", "prefect.server.api.server") if m in sys.modules]
print(json.dumps({"exit_code": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def _cli(tmp_path: Path, *args: str, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    environ.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **env)  # no profile naming a server
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, env=environ,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_run_without_a_prefect_server_runs_in_process_and_records_every_stage(tmp_path, shared_data):
    config = minimal_config(tmp_path, shared_data)
    result = _cli(tmp_path, "run", str(config), "--no-progress")
    assert result["exit_code"] == 0, result["output"]
    assert result["loaded"] == []  # no temporary server, no flow engine
    for part in ("ingest: 250 rows read", "label:", "detect:", "export:"):
        assert part in result["output"], result["output"]
    again = _cli(tmp_path, "label", str(config), "--no-progress")  # reused, as under Prefect
    assert again["exit_code"] == 0 and "label: config and inputs unchanged since run" in again["output"]
    from thresher.storage.schema import connect

    con = connect(tmp_path / "thresher.duckdb", read_only=True)
    runs = con.execute("SELECT stage, status, flow_run_id FROM runs ORDER BY started_at").fetchall()
    con.close()
    assert runs == [("ingest", "completed", None), ("label", "completed", None), ("detect", "completed", None),
                    ("export", "completed", None)]


def test_prefect_servers_thresher_starts_send_no_telemetry(tmp_path):
    """The Prefect settings every CLI command sets up (and the temporary server it may start inherits)
    have the server's analytics off; a value the user set is kept."""
    code = ("from thresher import prefect_setup; prefect_setup.configure(); "
            "from prefect.settings import get_current_settings; print(get_current_settings().server.analytics_enabled)")
    environ = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    environ["PREFECT_HOME"] = str(tmp_path)
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120)
    assert quiet.stdout.strip() == "False", quiet.stderr
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "true"})
    assert chosen.stdout.strip() == "True", chosen.stderr


def test_a_local_run_with_a_dask_section_runs_its_chunks_as_plain_dask_futures(tmp_path, shared_data):
    """No Prefect server: the LF chunks go to a 2-worker LocalCluster as plain Dask futures (no worker
    needs a Prefect API, so none starts a temporary server), with the votes of a single process."""
    import shutil

    from tests.conftest import YOUTUBE_EXAMPLE
    from tests.flows.test_dask import CONFIG
    from thresher.storage.schema import connect

    shutil.copy(YOUTUBE_EXAMPLE / "lfs.py", tmp_path / "lfs.py")
    text = CONFIG.format(data=shared_data / "wrench_youtube")
    (tmp_path / "single.yaml").write_text(text)
    (tmp_path / "dask.yaml").write_text("dask: {n_workers: 2, chunk_rows: 500}\n" + text)
    votes = {}
    for name in ("single", "dask"):
        db = str(tmp_path / f"{name}.duckdb")
        for command in ("ingest", "label"):
            result = _cli(tmp_path, command, str(tmp_path / f"{name}.yaml"), "--db", db, "--no-progress")
            assert result["exit_code"] == 0 and result["loaded"] == [], result
        con = connect(db, read_only=True)
        votes[name] = con.execute("SELECT item_id, lf, vote FROM votes ORDER BY ALL").fetchall()
        con.close()
    assert len(votes["single"]) > 1000 and votes["dask"] == votes["single"]
