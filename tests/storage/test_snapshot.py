"""SQL while a pipeline runs: `thresher sql` answers from the snapshots of the completed stages."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from thresher.storage.repo import run_stage
from thresher.storage.ingest import ingest
from thresher.storage.schema import connect
from thresher.storage.snapshot import open_snapshot, snapshot_dir
from tests.conftest import REPO
from tests.labeling.test_llm import LABEL_IN_SUBPROCESS, write_prompted_config
from thresher.cli import app
from thresher.pipeline.config import load_config
from thresher.testing.openai_server import OpenAIServer, yes_if


def csv_rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if "," in line and "note:" not in line]


def sql(db, query: str):
    return CliRunner().invoke(app, ["sql", query, "--db", str(db), "--format", "csv"])


@pytest.mark.slow
def test_a_query_during_a_running_stage_sees_only_completed_stages(tmp_path, shared_data):
    with OpenAIServer(yes_if("subscribe"), latency=0.05) as server:
        path = write_prompted_config(tmp_path, shared_data / "wrench_youtube" / "test.json", server, 2)
        cfg = load_config(path)
        run_stage(cfg.db, lambda con, record: ingest(con, cfg.ingest_config()), run_id="r1", stage="ingest",
                  config_hash="x")
        assert (snapshot_dir(cfg.db) / "items.parquet").exists()
        labeling = subprocess.Popen([sys.executable, "-c", LABEL_IN_SUBPROCESS, str(path), "r1"], cwd=REPO)
        deadline = time.monotonic() + 60
        while server.requests < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert labeling.poll() is None  # the label stage is running and holds the database

        during = sql(cfg.db, "select stage, status from runs order by stage")
        assert during.exit_code == 0, during.output
        assert "answering from the snapshot" in during.output
        assert csv_rows(during.output) == ["stage,status", "ingest,completed"]  # no trace of the running label
        curated = sql(cfg.db, "select count(*) as n, count(denoised_label) as labelled from curated")
        assert "250,0" in curated.output
        assert labeling.poll() is None  # still running: the answers came from the snapshot

        assert labeling.wait(120) == 0
    after = sql(cfg.db, "select stage, status from runs order by stage")
    assert "note:" not in after.output and "label,completed" in after.output
    assert "250,250" in sql(cfg.db, "select count(*), count(denoised_label) from curated").output


def test_snapshots_mirror_the_database(tmp_path, shared_data):
    cfg_text = f"""
classes: [HAM, SPAM]
sources:
  - {{path: "{shared_data / 'wrench_youtube'}/test.json", dataset: youtube, format: wrench}}
labeling: {{source_votes: true}}
"""
    (tmp_path / "t.yaml").write_text(cfg_text)
    cfg = load_config(tmp_path / "t.yaml")
    from thresher.labeling.stage import label

    run_stage(cfg.db, lambda con, record: ingest(con, cfg.ingest_config()), run_id="a", stage="ingest", config_hash="x")
    run_stage(cfg.db, lambda con, record: label(con, cfg.labeling, run_id="a"), run_id="a", stage="label", config_hash="y")
    snap, manifest = open_snapshot(cfg.db)
    live = connect(cfg.db, read_only=True)
    for query in ("select count(*), sum(vote) from votes", "select * from curated order by item_id",
                  "select stage, status from runs order by stage", "select * from lf_summary order by lf"):
        assert snap.sql(query).fetchall() == live.sql(query).fetchall(), query
    live.close()
    assert manifest["tables"]["labels"]["stage"] == "label" and manifest["tables"]["items"]["stage"] == "ingest"

    with pytest.raises(FileNotFoundError, match="no stage has completed yet"):
        open_snapshot(tmp_path / "other.duckdb")
