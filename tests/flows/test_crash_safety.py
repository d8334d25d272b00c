"""Crash safety: `thresher run` killed with SIGKILL at several points, then re-run to completion.

After the final run: it completed; no item, label or cached LLM answer is lost or duplicated;
stages completed before a kill are reused, not recomputed; no answered prompt was asked again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.labeling.test_llm import LOST_WINDOW_S
from thresher.storage.schema import connect
from thresher.storage.snapshot import snapshot_dir
from tests.conftest import REPO
from tests.labeling.test_llm import write_prompted_config
from thresher.testing.openai_server import OpenAIServer, yes_if

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
THRESHER = str(Path(sys.executable).parent / "thresher")


def completed_stages(db: Path) -> set[str]:
    """The stages whose completion the snapshot has recorded (readable while the run holds the db)."""
    import duckdb

    runs = snapshot_dir(db) / "runs.parquet"
    if not runs.exists():
        return set()
    try:
        rows = duckdb.sql(f"SELECT stage FROM read_parquet('{runs}') WHERE status = 'completed'").fetchall()
    except duckdb.Error:  # replaced while being read
        return set()
    return {r[0] for r in rows}


def test_kill_9_at_several_points_then_rerun(tmp_path, shared_data):
    from prefect.settings import PREFECT_API_URL

    concurrency = 2
    with OpenAIServer(yes_if("subscribe"), latency=0.03) as server:
        config = write_prompted_config(tmp_path, shared_data / "wrench_youtube" / "test.json", server, concurrency,
                                       source_votes=True, stages="detect: {n_folds: 3}\nreweight: {strategy: storm, epochs: 3}\n")
        db = tmp_path / "thresher.duckdb"
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path / "prefect-home"),
               "PREFECT_LOGGING_LEVEL": "WARNING"}
        command = [THRESHER, "run", str(config), "--no-progress"]

        kills: list[tuple[float, dict[str, float]]] = []  # when, and when each prompt was answered by then

        def run_until(condition, what: str) -> None:
            process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 240
            while not condition():
                assert process.poll() is None, f"the run ended before {what}"
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            kills.append((time.monotonic(), dict(server.answered_at)))
            process.wait(30)

        # 1: in the middle of the label stage's LLM prompts.
        run_until(lambda: sum(server.answered.values()) >= 60, "60 answered prompts")
        # 2: right after label completed (the kill lands in detect or reweight).
        run_until(lambda: "label" in completed_stages(db), "the label stage to complete")
        asked_before_final = set(server.prompts)
        # 3: once detect has completed too.
        run_until(lambda: "detect" in completed_stages(db), "the detect stage to complete")

        final = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
        assert "label: config and inputs unchanged since run" in final.stdout  # reused, not recomputed
        assert "ingest: config and inputs unchanged since run" in final.stdout
        repeated = {p for p, n in server.prompts.items() if n > 1}
        # Only prompts in flight at the first kill, or answered just before it and not yet stored.
        killed_at, answered_at = kills[0]
        assert all(killed_at - answered_at.get(p, killed_at) < LOST_WINDOW_S for p in repeated), len(repeated)
        assert set(server.prompts) == asked_before_final  # nothing asked after label completed

    con = connect(db, read_only=True)
    items = con.execute("SELECT count(*), count(DISTINCT item_id) FROM items").fetchall()[0]
    completed = dict(con.execute("SELECT stage, count(*) FROM runs WHERE status = 'completed' GROUP BY stage").fetchall())
    label_run = con.execute("SELECT run_id FROM latest_runs WHERE stage = 'label'").fetchall()[0][0]
    labels = con.execute("SELECT count(*), count(DISTINCT item_id) FROM labels WHERE run_id = ?", [label_run]).fetchall()[0]
    cache = con.execute("SELECT count(*), count(DISTINCT key) FROM llm_cache").fetchall()[0]
    distinct_texts = con.execute("SELECT count(DISTINCT text) FROM items").fetchall()[0][0]
    statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    export = con.execute("SELECT rows FROM exports WHERE run_id = (SELECT run_id FROM latest_runs WHERE stage = 'export')").fetchall()[0][0]
    con.close()
    assert items == (250, 250)
    assert labels == (250, 250)
    assert cache == (distinct_texts, distinct_texts)
    assert completed["ingest"] == 1 and completed["label"] == 1  # never recomputed after completing
    assert completed["export"] == 1 and export > 0
    # The stages the kills cut short say so; none stays 'running' forever.
    assert "running" not in statuses and statuses["interrupted"] >= 1, statuses
    manifest = json.loads((tmp_path / "export" / ".manifest.json").read_text())
    assert manifest["rows"] == export
