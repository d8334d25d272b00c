"""The fast tier's end-to-end path, as a user takes it on a few hundred real rows: raw CSV files through
ingest, label (keyword, regex and Python LFs, Snorkel's LabelModel), detect and export, run from
Python; then the same project read back through the CLI, SQL and the Parquet shards.

``thresher run`` itself goes through Prefect and is tested under tests/flows (the ``prefect`` tier).
"""

from __future__ import annotations

import json
import shutil

import pyarrow.dataset as ds
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import YOUTUBE_EXAMPLE
from thresher.cli import app

TRAIN, TEST = "Youtube01-Psy.csv", "Youtube05-Shakira.csv"  # 350 and 370 comments


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The bundled example's rule LFs on two of its five files (no prompted LFs, no STORM), run
    through the Python API; returns the config path, the pipeline and its run."""
    import thresher

    root = tmp_path_factory.mktemp("e2e")
    shutil.copy(YOUTUBE_EXAMPLE / "lfs.py", root / "lfs.py")
    config = yaml.safe_load((YOUTUBE_EXAMPLE / "thresher.yaml").read_text())
    columns = {"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"}
    config["sources"] = [
        {"path": str(YOUTUBE_EXAMPLE / "data" / TRAIN), "dataset": "youtube", "split": "train", "columns": columns},
        {"path": str(YOUTUBE_EXAMPLE / "data" / TEST), "dataset": "youtube", "split": "test", "columns": columns},
    ]
    config["labeling"]["lfs"] = [lf for lf in config["labeling"]["lfs"] if lf["kind"] != "prompt"]
    config["labeling"].pop("llm")
    config["detect"] = {"n_folds": 3}
    config["export"] = {"out_dir": "export", "rows_per_shard": 100}  # the default splits: the training ones
    path = root / "thresher.yaml"
    path.write_text(yaml.safe_dump(config))
    pipe = thresher.Pipeline(path)
    return path, pipe, pipe.run()


def test_python_api_runs_every_stage_on_raw_csv_rows(project):
    _, _, result = project
    assert list(result.summaries) == ["ingest", "label", "detect", "export"]
    assert result.summaries["ingest"]["new_items"] == 350 + 369  # one Shakira comment id repeats
    labels = result.labels
    assert set(labels["label_name"]) == {"HAM", "SPAM"} and len(labels) == 719
    decided = labels[labels["decided"]]
    assert len(decided) > 400 and (decided["label"] == decided["gold"]).mean() > 0.75  # rules, not noise
    scores = result.noise_scores
    assert len(scores) == len(decided) and scores["score"].between(0, 1).all()  # detect reads the decided items
    assert 0 < scores["is_issue"].sum() < len(scores) // 4


def test_the_shards_hold_the_train_rows_less_the_flagged(project):
    path, pipe, result = project
    out = path.parent / "export"
    manifest = json.loads((out / ".manifest.json").read_text())
    table = ds.dataset(out, format="parquet").to_table()
    excluded = result.summaries["export"]["excluded"]  # no LF voted, or the test split
    assert set(excluded) == {"uncovered", "held_out_split"}
    # Flagged items are kept at their label-quality weight (detect's flagged_quality), the rest at 1,
    # each class keeping its share of the weight
    flagged = set(pipe.sql("select item_id from curated where flagged and split = 'train'")["item_id"])
    weights = dict(zip(table.column("item_id").to_pylist(), table.column("weight").to_pylist()))
    assert flagged and flagged <= set(weights)
    assert max(weights[i] for i in flagged) < min(w for i, w in weights.items() if i not in flagged)
    assert excluded["held_out_split"] == 369 and set(table.column("split").to_pylist()) == {"train"}
    assert manifest["held_out"] == result.summaries["export"]["held_out"] == {"test": 369}
    assert manifest["splits"] == {"train": table.num_rows}
    assert manifest["target"] == {"kind": "hard", "column": "label"}  # what a worker should fit
    # What curation changed, scored on the held-out test split's gold (369 comments)
    proxy = result.summaries["export"]["proxy"]
    assert proxy["scored"] and proxy["gold_items"] == 369 and proxy["splits"] == ["test"], proxy
    assert proxy["raw"]["rows"] == 350 - excluded["uncovered"] and proxy["curated"]["rows"] == table.num_rows
    assert proxy["raw"]["accuracy"] > 0.75 and proxy["curated"]["accuracy"] > 0.75, proxy
    assert manifest["run_id"] == result.run_id and manifest["rows"] == table.num_rows == 719 - sum(excluded.values())
    assert set(table.column("label").to_pylist()) == {0, 1} and len(set(table.column("item_id").to_pylist())) == table.num_rows
    stored = pipe.sql("select reason, count(*) as n from excluded group by reason")
    assert stored.set_index("reason")["n"].to_dict() == excluded


def test_soft_targets_that_train_a_worse_proxy_are_warned_about(project, tmp_path):
    """A label model fitted on 350 items gives soft targets that lean to spam (mean 0.62, hard labels
    0.48): the proxy trained on them is worse, and the summary says so and what to try."""
    import thresher

    copy = tmp_path / "copy"
    shutil.copytree(project[0].parent, copy)  # the module's project keeps its own runs
    config = yaml.safe_load((copy / "thresher.yaml").read_text())
    config["export"]["target"] = "soft"
    (copy / "thresher.yaml").write_text(yaml.safe_dump(config))
    proxy = thresher.Pipeline(copy / "thresher.yaml").run().summaries["export"]["proxy"]
    assert json.loads((copy / "export" / ".manifest.json").read_text())["target"]["kind"] == "soft"
    assert proxy["curated"]["accuracy"] < proxy["raw"]["accuracy"] - 0.01 and "export.target: hard" in proxy["warning"]


def test_sql_reads_every_stage_and_writes_nothing(project):
    _, pipe, result = project
    fates = pipe.sql("select split, count(*) as n, count(excluded_reason) as excluded from curated group by split order by split")
    excluded = sum(result.summaries["export"]["excluded"].values())
    assert fates.to_dict("records") == [{"split": "test", "n": 369, "excluded": 369},
                                        {"split": "train", "n": 350, "excluded": excluded - 369}]
    for statement in ("delete from items", "attach 'other.duckdb' as o", "select 1; drop table items",
                      "copy items to 'leak.csv'"):
        with pytest.raises(ValueError):
            pipe.sql(statement)
    assert pipe.sql("select count(*) as n from items")["n"][0] == 719


def test_the_cli_checks_lists_queries_and_reports_the_project(project):
    path, _, result = project
    runner = CliRunner()
    checked = runner.invoke(app, ["check", str(path)])
    assert checked.exit_code == 0, checked.output
    lfs = runner.invoke(app, ["lfs", str(path)])
    assert lfs.exit_code == 0 and "short_comment" in lfs.output and "subscribe" in lfs.output, lfs.output
    query = runner.invoke(app, ["sql", "select stage, status from runs order by started_at", str(path)])
    assert query.exit_code == 0, query.output
    assert query.output.split() == ["stage,status", "ingest,completed", "label,completed", "detect,completed",
                                    "export,completed"]
    report = path.parent / "report.html"
    made = runner.invoke(app, ["report", str(path), "--out", str(report)])
    assert made.exit_code == 0, made.output
    assert result.run_id in report.read_text() and "data:image/svg+xml" in report.read_text()
    proxy = result.summaries["export"]["proxy"]
    assert "What curation changed" in report.read_text() and f"{proxy['curated']['accuracy']:.3f}" in report.read_text()
