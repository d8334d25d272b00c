"""`thresher deploy` against a real `prefect server start` on 127.0.0.1: register, trigger, complete.

This is the path the README shows: start a server, `thresher deploy CONFIG --interval ...` (which
serves the deployment), `prefect deployment run ... --watch`, then the outputs are in DuckDB.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from storage.schema import connect
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _healthy(api: str) -> bool:
    """Whether the server answers its health check (a refused connection means not yet)."""
    try:
        return get_json(f"{api}/health") is True
    except OSError:
        return False


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """A real Prefect server (its own home and SQLite database); about 16 s to start on 2 cores."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while not _healthy(api):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield api
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_deploy_serves_a_scheduled_deployment_whose_run_completes(prefect_server, tmp_path, shared_data):
    config = tmp_path / "thresher.yaml"
    config.write_text(f"""
project: deploy-test
classes: [HAM, SPAM]
sources:
  - {{path: "{shared_data / 'wrench_youtube'}/test.json", dataset: youtube, format: wrench}}
labeling:
  source_votes: true
  model: {{model: majority}}
detect: {{n_folds: 3}}
""")
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "client-home"),
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen([str(BIN / "thresher"), "deploy", str(config), "--interval", "3600", "--name", "nightly"],
                               env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        deployment = None
        while deployment is None:
            request = urllib.request.Request(f"{prefect_server}/deployments/filter", data=b"{}", method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                found = [d for d in json.loads(response.read()) if d["name"] == "nightly"]
            deployment = found[0] if found else None
            assert serving.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the deployment was not registered within 120 s"
            time.sleep(0.5)
        assert [s["schedule"]["interval"] for s in deployment["schedules"]] == [3600.0]
        assert deployment["parameters"]["config_path"] == str(config)

        triggered = subprocess.run([str(BIN / "prefect"), "deployment", "run", "thresher-pipeline/nightly", "--watch",
                                    "--watch-timeout", "300"], env=env, cwd=REPO, capture_output=True, text=True,
                                   timeout=360)
        assert triggered.returncode == 0, triggered.stdout[-3000:] + triggered.stderr[-3000:]
        assert "Completed" in triggered.stdout + triggered.stderr
    finally:
        serving.terminate()
        serving.wait(60)
        log.close()

    con = connect(tmp_path / "thresher.duckdb", read_only=True)
    runs = con.execute("SELECT stage, status, flow_run_id FROM runs ORDER BY started_at").fetchall()
    labels = con.execute("SELECT count(*) FROM labels").fetchall()[0][0]
    con.close()
    assert [(stage, status) for stage, status, _ in runs] == [
        ("ingest", "completed"), ("label", "completed"), ("detect", "completed"), ("export", "completed")]
    assert labels == 250 and all(flow_run_id for _, _, flow_run_id in runs)
    assert (tmp_path / "export" / "manifest.json").exists()
