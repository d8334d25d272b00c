"""The CLI end to end through real Prefect flows, and the read-only SQL path."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thresher.storage.schema import connect
from tests.conftest import YOUTUBE_EXAMPLE
from thresher.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the bundled example with the (optional) STORM reweight stage added, run once end to end
    with `thresher run`."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(YOUTUBE_EXAMPLE, root / "youtube")
    config = root / "youtube" / "thresher.yaml"
    config.write_text(config.read_text() + "\nreweight: {strategy: storm, epochs: 5}\n")
    result = invoke("run", root / "youtube" / "thresher.yaml", "--no-progress")
    assert result.exit_code == 0, result.output
    for part in ("ingest: 1956 rows read, 1953 new items", "label:", "detect:", "reweight:", "export:"):
        assert part in result.output, result.output
    return root / "youtube"


def sql(project: Path, query: str, fmt: str = "csv"):
    return invoke("sql", query, "--db", project / "thresher.duckdb", "--format", fmt)


def test_run_writes_every_stage_with_its_prefect_flow_run(project):
    con = connect(project / "thresher.duckdb", read_only=True)
    runs = con.execute("SELECT stage, status, flow_run_id, run_id FROM runs ORDER BY started_at").fetchall()
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("items", "rejects", "labels", "noise_scores")}
    counts |= dict(con.execute("SELECT 'weights_' || stage, count(*) FROM weights GROUP BY stage").fetchall())
    shard_weights = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE abs(s.weight - w.weight) < 1e-6) "
        f"FROM read_parquet('{project}/export/*.parquet') s JOIN weights w USING (item_id) WHERE w.stage = 'reweight'").fetchall()[0]
    con.close()
    assert [r[0] for r in runs] == ["ingest", "label", "detect", "reweight", "export"]
    assert all(r[1] == "completed" and r[2] for r in runs)
    assert counts["items"] == counts["labels"] == 1953 and counts["rejects"] == 3
    assert 0 < counts["noise_scores"] == counts["weights_detect"] == counts["weights_reweight"] < 1953
    assert shard_weights[0] > 800 and shard_weights[0] == shard_weights[1]  # the shards carry STORM's weights
    manifest = json.loads((project / "export" / ".manifest.json").read_text())
    assert manifest["rows"] > 800 and manifest["run_id"] == runs[-1][3] == runs[0][3]


def test_sql_answers_in_csv_and_json(project):
    result = sql(project, "select count(*) as n from items")
    assert result.exit_code == 0 and list(csv.reader(io.StringIO(result.stdout))) == [["n"], ["1953"]]
    result = sql(project, "select reason, count(*) as n from rejects group by reason", "json")
    assert json.loads(result.stdout) == [{"reason": "duplicate_row", "n": 3}]
    result = sql(project, "select * from lf_summary limit 2", "table")
    assert result.exit_code == 0 and "coverage" in result.stdout


@pytest.mark.parametrize("statement", ["delete from items", "drop table items", "insert into rejects values ('x', 1, 'r', null, null, now())"])
def test_sql_cannot_modify_the_database(project, statement):
    result = sql(project, statement)
    assert result.exit_code == 1
    assert "read-only" in result.stderr
    assert sql(project, "select count(*) as n from items").stdout.splitlines()[1] == "1953"


def test_sql_errors_are_clear(project, tmp_path):
    result = sql(project, "select nope from items")
    assert result.exit_code == 1 and "nope" in result.stderr
    result = invoke("sql", "select 1", "--db", tmp_path / "absent.duckdb")
    assert result.exit_code == 1 and "No thresher database" in result.stderr


def test_read_only_commands_do_not_load_the_heavy_stack(project):
    """`thresher lfs`, `sql`, `report` and `--version` answer without torch, Snorkel, scikit-learn or
    matplotlib (their start-up time is measured in benchmarks/cli_startup.py)."""
    probe = """
import sys
from typer.testing import CliRunner
from thresher.cli import app
for args in (["--version"], ["sql", "select count(*) from items", sys.argv[1]], ["lfs", sys.argv[1]],
             ["report", sys.argv[1], "--out", sys.argv[2]]):
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
print(sorted(m for m in ("torch", "snorkel", "sklearn", "cleanlab", "prefect", "matplotlib") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", probe, str(project / "thresher.yaml"),
                           str(project / "report-probe.html")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_single_stages_rerun_idempotently(project):
    result = invoke("ingest", project / "thresher.yaml", "--no-progress", "--force")
    assert result.exit_code == 0 and "0 new items, 1953 already present" in result.stdout
    hint = next(line for line in result.stdout.splitlines() if "see them with" in line)
    assert hint.endswith("thresher.duckdb") and "--db DB" not in hint, hint  # the real path, ready to paste
    lfs = invoke("lfs", project / "thresher.yaml")
    assert lfs.exit_code == 0 and "SPAM" in lfs.stdout and "[1]" not in lfs.stdout, lfs.stdout  # polarity by name
    result = invoke("detect", project / "thresher.yaml", "--no-progress", "--force")
    assert result.exit_code == 0 and "labels checked" in result.stdout
    assert "of weight" in result.stdout and "balance per_class" in result.stdout, result.stdout
    result = invoke("reweight", project / "thresher.yaml", "--no-progress", "--force")
    assert result.exit_code == 0 and "items weighed by storm" in result.stdout and "Weights per epoch" in result.stdout
    per_run = sql(project, "select count(*) from weights where stage = 'reweight' group by run_id").stdout.splitlines()[1:]
    assert len(per_run) == 2 and len(set(per_run)) == 1  # a new run, the same items, nothing duplicated
    assert sql(project, "select count(*) from items").stdout.splitlines()[1] == "1953"
    assert sql(project, "select count(*) from rejects").stdout.splitlines()[1] == "3"


def test_unchanged_stages_are_reused(project):
    before = sql(project, "select count(*) from runs").stdout
    result = invoke("run", project / "thresher.yaml", "--no-progress")
    assert result.exit_code == 0, result.output
    for stage in ("ingest", "label", "detect", "reweight"):
        assert f"{stage}: config and inputs unchanged since run" in result.output, stage
    assert "new items" not in result.output and "labels checked" not in result.output  # no old counts re-printed
    runs = json.loads(sql(project, "select stage, count(*) as n from runs group by stage", "json").stdout)
    assert {r["stage"]: r["n"] for r in runs}["export"] >= 2  # export always runs (its files may be gone)
    assert "export:" in result.output
    # A changed input (one more item) invalidates label and everything downstream, not ingest's config.
    extra = project / "data" / "Youtube06-extra.csv"
    extra.write_text("COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\nx1,me,2015-01-01,subscribe to my channel please,1\n")
    try:
        config = project / "thresher.yaml"
        config.write_text(config.read_text().replace("path: data/Youtube0[1-4]-*.csv", "path: data/Youtube0[1-46]-*.csv"))
        result = invoke("run", config, "--no-progress")
        assert result.exit_code == 0, result.output
        assert "1 new items" in result.output and "label: config and inputs unchanged" not in result.output
    finally:
        config.write_text(config.read_text().replace("path: data/Youtube0[1-46]-*.csv", "path: data/Youtube0[1-4]-*.csv"))
        extra.unlink()
    assert before != sql(project, "select count(*) from runs").stdout


def test_one_run_reads_its_config_once_and_builds_each_lf_once(project, monkeypatch):
    """The CLI checks the config, then the parent flow and every stage subflow run that same object."""
    import thresher.flows.pipeline
    import thresher.flows.stage
    import thresher.pipeline.check
    from thresher.labeling.config import LabelingConfig
    from thresher.pipeline.config import load_config

    n_specs = len(load_config(project / "thresher.yaml").labeling.lfs)
    reads: list[str] = []
    builds: list[str] = []

    def counted_load(path, **kwargs):
        reads.append(str(path))
        return load_config(path, **kwargs)

    real_build = LabelingConfig.build_spec

    def counted_build(self, spec):
        if id(spec) not in self._built:  # built now, not taken from this config's cache
            builds.append(getattr(spec, "name", None) or getattr(spec, "path", None) or spec.function)
        return real_build(self, spec)

    for module in (thresher.pipeline.check, thresher.flows.stage, thresher.flows.pipeline):
        monkeypatch.setattr(module, "load_config", counted_load)
    monkeypatch.setattr(LabelingConfig, "build_spec", counted_build)
    result = invoke("run", project / "thresher.yaml", "--no-progress", "--force")
    assert result.exit_code == 0, result.output
    assert reads == [str(project / "thresher.yaml")]
    assert len(builds) == n_specs and len(set(builds)) == n_specs, builds


def test_a_failed_stage_leaves_earlier_stages_intact(project, tmp_path):
    foreign = tmp_path / "not-an-export"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("do not delete")
    before = sql(project, "select count(*) from labels").stdout
    result = invoke("export", project / "thresher.yaml", "--out", foreign, "--no-progress")
    assert result.exit_code == 1 and "not a thresher export" in result.stderr
    assert (foreign / "precious.txt").read_text() == "do not delete"
    assert sql(project, "select count(*) from labels").stdout == before
    status = sql(project, "select status, error from runs where stage = 'export' order by started_at desc limit 1", "json")
    latest = json.loads(status.stdout)[0]
    assert latest["status"] == "failed" and "FileExistsError" in latest["error"]


def test_run_prints_each_stage_as_it_ends_and_keeps_them_when_a_later_one_fails(project, tmp_path):
    foreign = tmp_path / "not-an-export"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("do not delete")
    result = invoke("run", project / "thresher.yaml", "--out", foreign, "--no-progress", "--force")
    assert result.exit_code == 1 and "not a thresher export" in result.stderr
    shown = result.stdout
    for part in ("ingest: 1956 rows read", "label:", "labels checked", "items weighed by storm"):
        assert part in shown, (part, shown)
    assert shown.index("ingest:") < shown.index("labels checked") < shown.index("items weighed by storm")
    assert "export:" not in shown


def hold(db: Path, seconds: float, *, read_only: bool) -> subprocess.Popen:
    """Another process that holds ``db`` (a reader's long query, or a writer) for ``seconds``."""
    code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == '1'); "
            "c.sql('select count(*) from items').fetchall(); print('held', flush=True); time.sleep(float(sys.argv[2]))")
    process = subprocess.Popen([sys.executable, "-c", code, str(db), str(seconds), "1" if read_only else "0"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_long_reader_makes_a_stage_wait_not_fail(project):
    reader = hold(project / "thresher.duckdb", 8, read_only=True)
    try:
        start = time.monotonic()
        result = invoke("export", project / "thresher.yaml", "--no-progress")
        waited = time.monotonic() - start
        assert result.exit_code == 0, result.output
        assert "export:" in result.stdout and waited > 5  # it waited for the reader to finish
        assert reader.wait(30) == 0  # and the reader finished its query undisturbed
    finally:
        reader.kill()
    latest = json.loads(sql(project, "select status from runs where stage = 'export' order by started_at desc limit 1",
                            "json").stdout)
    assert latest == [{"status": "completed"}]


def test_a_lock_held_past_the_timeout_is_one_clear_error(project, monkeypatch):
    monkeypatch.setenv("THRESHER_DB_LOCK_TIMEOUT", "2")
    writer = hold(project / "thresher.duckdb", 120, read_only=False)
    try:
        result = invoke("export", project / "thresher.yaml", "--no-progress")
    finally:
        writer.kill()
        writer.wait()
    assert result.exit_code == 1, result.output
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.output, result.output
    assert f"PID {writer.pid}" in result.stderr and "waited 2 s" in result.stderr, result.stderr


def test_a_killed_stage_is_marked_interrupted_and_its_staging_removed(project):
    con = connect(project / "thresher.duckdb")
    con.execute("INSERT INTO runs (run_id, stage, config_hash, started_at, status) "
                "VALUES ('killed-run', 'export', 'x', now(), 'running')")
    con.close()
    staging = project / ".export.tmp-killed-run"
    staging.mkdir()
    (staging / "shard-00000.parquet").write_bytes(b"half a shard")
    result = invoke("export", project / "thresher.yaml", "--no-progress")
    assert result.exit_code == 0, result.output
    row = json.loads(sql(project, "select status, error from runs where run_id = 'killed-run'", "json").stdout)[0]
    assert row["status"] == "interrupted" and "ended before the stage finished" in row["error"]
    assert not staging.exists() and (project / "export" / ".manifest.json").exists()


def test_invalid_config_names_the_field(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("classes: [A]\nsources: []\n")
    result = invoke("ingest", config)
    assert result.exit_code == 1
    assert "classes" in result.stderr and "sources" in result.stderr and str(config) in result.stderr
    assert "line 1, classes" in result.stderr and "line 2, sources" in result.stderr
    assert "Traceback" not in result.stderr  # refused before any Prefect flow starts


def test_help_reads_well():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "ingest", "label", "detect", "reweight", "select", "export", "sql", "deploy", "report"):
        assert command in result.stdout
    assert "read-only" in invoke("sql", "--help").stdout


def test_select_then_export_the_selection(project, tmp_path):
    """A 'select' section added to the example: CoLoR-Filter towards the test split (gold labels)."""
    config = (project / "thresher.yaml").read_text() + (
        "\nselect:\n  method: color_filter\n  budget: 0.2\n  pool_splits: [train]\n"
        "  target: {split: test, labels: gold}\n")
    (project / "select.yaml").write_text(config)
    result = invoke("select", project / "select.yaml", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "chosen by color_filter towards split 'test'" in result.stdout and "Selection by dataset" in result.stdout
    out = tmp_path / "selected"
    result = invoke("export", project / "select.yaml", "--out", out, "--no-progress")
    assert result.exit_code == 0 and "not_selected" in result.stdout, result.output
    manifest = json.loads((out / ".manifest.json").read_text())
    chosen = sql(project, "select count(*) from selections s join runs r using (run_id) where r.stage = 'select' "
                          "and s.selected").stdout.splitlines()[1]
    # The export also drops the detect stage's label issues, so it holds at most the selection.
    assert manifest["selection"]["method"] == "color_filter" and 0 < manifest["rows"] <= int(chosen)
    assert int(chosen) == manifest["selection"]["selected"]


def test_curated_view_holds_each_stages_latest_decision(project):
    result = sql(project, "select weight_from, count(*) as n, count(denoised_label) as labelled, count(flagged) as checked, "
                          "count(excluded_reason) as excluded from curated group by weight_from order by weight_from", "json")
    rows = {r["weight_from"]: r for r in json.loads(result.output)}
    con = connect(project / "thresher.duckdb", read_only=True)
    weights = con.execute("SELECT count(*) FROM weights WHERE stage = 'reweight' AND run_id = "
                          "(SELECT run_id FROM latest_runs WHERE stage = 'reweight')").fetchall()[0][0]
    excluded = con.execute("SELECT count(*) FROM excluded WHERE run_id = "
                           "(SELECT run_id FROM latest_runs WHERE stage = 'export')").fetchall()[0][0]
    con.close()
    assert rows["reweight"]["n"] == rows["reweight"]["checked"] == weights  # weighed items were checked
    n_items = int(sql(project, "select count(*) from items").stdout.splitlines()[1])
    assert sum(r["n"] for r in rows.values()) == sum(r["labelled"] for r in rows.values()) == n_items
    assert sum(r["excluded"] for r in rows.values()) == excluded > 0


def chromium_command(*args: str) -> list[str] | None:
    """Headless Chromium that only reads the file it is given (no background networking)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        return None
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars", *args]


def test_report_renders_with_its_plots_in_headless_chromium(project, tmp_path):
    import os
    import subprocess

    page = tmp_path / "report.html"
    result = invoke("report", project / "thresher.yaml", "--out", page)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    images = html.count('src="data:image/svg+xml;base64,')
    assert images >= 4 and f"{images} plots" in result.output  # + a selection plot once a select stage ran
    assert "<td>SPAM</td>" in html  # LF polarity by class name
    for heading in ("Stages", "Labeling functions", "LabelModel accuracy", "Class balance before and after",
                    "Noise detection", "Weight distribution", "Export", "LLM-prompted LFs"):
        assert heading in html, heading
    command = chromium_command(f"--user-data-dir={tmp_path / 'profile'}")
    if command is None:
        if os.environ.get("THRESHER_REQUIRE_CHROMIUM"):
            pytest.fail("THRESHER_REQUIRE_CHROMIUM is set but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    dom = subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert f'data-images-loaded="{images}"' in dom.stdout, dom.stderr[-2000:]  # every plot decoded in the browser
    shot = tmp_path / "report.png"
    subprocess.run([*command, "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    from PIL import Image

    with Image.open(shot) as picture:
        assert picture.size == (1200, 3000)
        assert len(picture.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # tables and plots, not a blank page


def test_stage_summaries_are_prefect_artifacts(project):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    keys = ["thresher-ingest", "thresher-label", "thresher-detect", "thresher-reweight", "thresher-export",
            "thresher-lf-summary"]
    con = connect(project / "thresher.duckdb", read_only=True)
    flow_runs = {r[0] for r in con.execute("SELECT flow_run_id FROM runs WHERE flow_run_id IS NOT NULL").fetchall()}
    con.close()
    with get_client(sync_client=True) as client:  # the session's server also holds other tests' runs
        artifacts = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
                     if str(a.flow_run_id) in flow_runs]
    found = {a.key: a for a in artifacts}
    assert set(found) == set(keys)
    assert found["thresher-lf-summary"].type == "table" and "p_subscribe" in str(found["thresher-lf-summary"].data)
    assert "| n_items |" in found["thresher-label"].data and all(a.flow_run_id for a in artifacts)
