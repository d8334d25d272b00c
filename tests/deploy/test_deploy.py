"""`thresher deploy` against a real `prefect server start` on 127.0.0.1: register, schedule, complete.

This is the path the README shows: start a server, `thresher deploy CONFIG --interval ...` (which
serves the deployment); the server's scheduler itself creates a run, the serving process executes
it, and its stages land in DuckDB, its logs and summary artifact on the server; then
`prefect deployment run ... --watch` starts one by hand.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from thresher.storage.schema import connect
from tests.conftest import REPO, minimal_config

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _healthy(api: str) -> bool:
    """Whether the server answers its health check (a refused connection means not yet)."""
    try:
        return get_json(f"{api}/health") is True
    except OSError:
        return False


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """A real Prefect server (its own home and SQLite database); about 16 s to start on 2 cores. It
    overrides the session's test server (tests/conftest.py) for this module."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    # The scheduler looks for deployments to schedule every 5 s instead of every 60 s.
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"}
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


def test_the_scheduler_creates_a_run_that_completes_with_logs_and_artifacts(prefect_server, tmp_path, shared_data):
    config = minimal_config(tmp_path, shared_data, "project: deploy-test\n")
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "client-home"),
           "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    env.pop("PREFECT_LOGGING_LEVEL", None)
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    serving = subprocess.Popen([str(BIN / "thresher"), "deploy", str(config), "--interval", "30", "--name", "nightly"],
                               env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        deployment = None
        while deployment is None:
            found = [d for d in post_json(f"{prefect_server}/deployments/filter", {}) if d["name"] == "nightly"]
            deployment = found[0] if found else None
            assert serving.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the deployment was not registered within 180 s"
            time.sleep(0.5)
        assert [s["schedule"]["interval"] for s in deployment["schedules"]] == [30.0]
        assert deployment["parameters"]["config_path"] == str(config)

        # Nobody triggers it: the server's scheduler creates the run, `thresher deploy` executes it.
        deadline = time.monotonic() + 600
        scheduled = None
        while scheduled is None:
            runs = post_json(f"{prefect_server}/flow_runs/filter",
                             {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})
            assert not [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")], (runs, log_path.read_text())
            done = [r for r in runs if r["auto_scheduled"] and r["state_type"] == "COMPLETED"]
            scheduled = done[0] if done else None
            assert serving.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"no scheduled run completed within 600 s: {runs}\n{log_path.read_text()}"
            time.sleep(1)

        triggered = subprocess.run([str(BIN / "prefect"), "deployment", "run", "thresher-pipeline/nightly", "--watch",
                                    "--watch-timeout", "300"], env=env, cwd=REPO, capture_output=True, text=True,
                                   timeout=360)
        assert triggered.returncode == 0, triggered.stdout[-3000:] + triggered.stderr[-3000:]
        assert "Completed" in triggered.stdout + triggered.stderr
    finally:
        serving.terminate()
        serving.wait(60)
        log.close()

    # The parent run carries the pipeline's summary artifact, with rounded numbers.
    artifacts = post_json(f"{prefect_server}/artifacts/filter", {"artifacts": {"key": {"any_": ["thresher-pipeline"]},
                                                                               "flow_run_id": {"any_": [scheduled["id"]]}}})
    assert len(artifacts) == 1, artifacts
    markdown = artifacts[0]["data"]
    run_id = markdown.split("pipeline run ", 1)[1].split()[0]
    assert "accuracy on test (denoised)" in markdown and "accuracy of kept labels (gold)" in markdown, markdown
    numbers = [float(x) for x in re.findall(r"\| (\d+\.\d+) \|", markdown)]
    assert numbers and all(len(repr(x).split(".")[1]) <= 3 for x in numbers), markdown
    # Each stage's INFO summary reached the server's logs of the runs.
    logs = post_json(f"{prefect_server}/logs/filter", {"limit": 200})
    messages = " ".join(entry["message"] for entry in logs)
    for stage in ("ingest", "label", "detect", "export"):
        assert f"{stage} {run_id}:" in messages, (stage, messages[-3000:])
    assert any(entry["flow_run_id"] == scheduled["id"] and f"pipeline {run_id}" in entry["message"] for entry in logs)
    # The serving terminal printed one line for each run it executed.
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("thresher deploy: ")]
    assert any(f"'{scheduled['name']}' Completed" in line for line in lines), log_path.read_text()
    assert "Traceback" not in log_path.read_text()

    con = connect(tmp_path / "thresher.duckdb", read_only=True)
    runs = con.execute("SELECT stage, status, flow_run_id FROM runs WHERE run_id = ? ORDER BY started_at",
                       [run_id]).fetchall()
    labels = con.execute("SELECT count(*) FROM labels WHERE run_id = ?", [run_id]).fetchall()[0][0]
    con.close()
    assert [(stage, status) for stage, status, _ in runs] == [
        ("ingest", "completed"), ("label", "completed"), ("detect", "completed"), ("export", "completed")]
    assert labels == 250 and all(flow_run_id for _, _, flow_run_id in runs)
    assert (tmp_path / "export" / ".manifest.json").exists()


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_stopping_deploy_pauses_its_schedule(prefect_server, tmp_path, shared_data, signum):
    """``kill`` (SIGTERM, what systemd and container runtimes send) and Ctrl-C (SIGINT) both stop
    `thresher deploy` cleanly, and the server then holds the deployment paused: no more runs are
    created for a process that is gone. Asked of the server itself."""
    import signal

    name = f"stop-{signum.lower()}"
    config = minimal_config(tmp_path, shared_data, "project: stop-test\n")
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "client-home")}
    env.pop("PREFECT_LOGGING_LEVEL", None)
    serving = subprocess.Popen([str(BIN / "thresher"), "deploy", str(config), "--interval", "3600", "--name", name],
                               env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not [d for d in post_json(f"{prefect_server}/deployments/filter", {}) if d["name"] == name]:
            assert serving.poll() is None, serving.stdout.read()
            assert time.monotonic() < deadline, "the deployment was not registered within 180 s"
            time.sleep(0.5)
        deployment = [d for d in post_json(f"{prefect_server}/deployments/filter", {}) if d["name"] == name][0]
        assert deployment["paused"] is False
        time.sleep(2)  # the runner is polling
        serving.send_signal(getattr(signal, signum))
        output, _ = serving.communicate(timeout=120)
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait()
    assert serving.returncode == 0, output
    assert f"the schedule of deployment 'thresher-pipeline/{name}' is paused" in output, output
    assert "never awaited" not in output and "Traceback" not in output, output
    assert get_json(f"{prefect_server}/deployments/{deployment['id']}")["paused"] is True
