"""Operating thresher as a user does: errors that say what to do, once; no retry of permanent errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from thresher.labeling.llm.backend import LLMBackendError
from thresher.storage.schema import connect
from tests.conftest import REPO, minimal_config
from tests.labeling.test_llm import write_prompted_config
from thresher.testing.openai_server import OpenAIServer

THRESHER = str(Path(sys.executable).parent / "thresher")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), **extra}
    for name in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL"):
        if name not in extra:
            env.pop(name, None)
    return env


def test_a_401_fails_the_label_stage_without_a_task_retry(tmp_path, shared_data):
    from thresher.flows import ingest_flow, label_flow  # prefect: imported by the tests that run flows

    concurrency = 2
    with OpenAIServer() as server:
        server.fault = lambda i, prompt: "401"
        config = write_prompted_config(tmp_path, shared_data / "wrench_youtube" / "test.json", server, concurrency)
        db = str(tmp_path / "thresher.duckdb")
        ingest_flow(str(config), db=db)
        with pytest.raises(LLMBackendError, match="HTTP 401"):
            label_flow(str(config), db=db)
        # One attempt: the requests in flight when the first 401 came back, not a second round.
        assert 1 <= server.requests <= concurrency, server.requests
    con = connect(db, read_only=True)
    runs = con.execute("SELECT status, error FROM runs WHERE stage = 'label'").fetchall()
    con.close()
    assert len(runs) == 1 and runs[0][0] == "failed" and "401" in runs[0][1]


@pytest.mark.slow
def test_an_unreachable_prefect_api_is_one_line_that_says_what_to_do(tmp_path, shared_data):
    config = minimal_config(tmp_path, shared_data)
    url = f"http://127.0.0.1:{closed_port()}/api"
    done = subprocess.run([THRESHER, "run", str(config), "--no-progress"], capture_output=True, text=True, cwd=REPO,
                          env=cli_env(tmp_path, PREFECT_API_URL=url), timeout=300)
    assert done.returncode == 1
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"No Prefect server answers at PREFECT_API_URL={url}" in done.stderr and "prefect server start" in done.stderr
    assert not (tmp_path / "thresher.duckdb").exists()


@pytest.mark.slow
def test_a_temporary_server_that_does_not_start_in_time_is_one_line(tmp_path, shared_data):
    config = minimal_config(tmp_path, shared_data)
    env = cli_env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1", THRESHER_PREFECT="ephemeral")
    done = subprocess.run([THRESHER, "run", str(config), "--no-progress"], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in done.stderr, done.stderr


@pytest.mark.slow
def test_a_failing_stage_prints_one_error_line_and_debug_shows_the_traceback(tmp_path):
    data = tmp_path / "rows.csv"
    data.write_bytes(b"id,text,note\xff\n1,hello,x\n")  # a header that is not UTF-8 fails the whole file
    config = tmp_path / "thresher.yaml"
    config.write_text(f'classes: [HAM, SPAM]\nlabels_from: given\nsources:\n  - {{path: "{data}", dataset: d, '
                      'columns: {id: id, text: text}}\n')
    env = cli_env(tmp_path)
    done = subprocess.run([THRESHER, "ingest", str(config), "--no-progress"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "is not valid UTF-8" in done.stderr
    con = connect(tmp_path / "thresher.duckdb", read_only=True)
    statuses = con.execute("SELECT stage, status FROM runs").fetchall()
    con.close()
    assert statuses == [("ingest", "failed")]
    debug = subprocess.run([THRESHER, "--debug", "ingest", str(config), "--no-progress"], capture_output=True,
                           text=True, cwd=REPO, env=env, timeout=600)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ValueError" in debug.stderr
