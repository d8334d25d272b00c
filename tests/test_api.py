"""The Python API as a notebook uses it: a config dict, rows from a DataFrame, results as DataFrames."""

from __future__ import annotations

import glob
import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import YOUTUBE_EXAMPLE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The bundled example's config as a dict, its comments read with pandas, run from Python."""
    import thresher

    config = yaml.safe_load((YOUTUBE_EXAMPLE / "thresher.yaml").read_text())
    config.pop("sources")
    config["labeling"].pop("llm")
    config["labeling"]["lfs"] = [lf for lf in config["labeling"]["lfs"] if lf["kind"] != "prompt"]
    frame = pd.concat([pd.read_csv(p) for p in sorted(glob.glob(str(YOUTUBE_EXAMPLE / "data" / "Youtube0[1-4]-*.csv")))])
    root = tmp_path_factory.mktemp("notebook")
    pipe = thresher.Pipeline(config, data=frame, columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"},
                             dataset="youtube", split="train", base_dir=YOUTUBE_EXAMPLE, db=str(root / "t.duckdb"),
                             out_dir=str(root / "export"))
    return pipe, pipe.run(), frame, root


def test_a_run_from_a_dataframe_returns_dataframes(notebook):
    pipe, result, frame, _ = notebook
    assert list(result.summaries) == ["ingest", "label", "detect", "export"]
    labels = result.labels
    assert len(labels) == result.summaries["ingest"]["new_items"] == frame["COMMENT_ID"].nunique()  # repeated ids are not new items
    assert list(labels.columns[:7]) == ["item_id", "id", "split", "text", "label", "decided", "label_name"]
    joined = frame.drop_duplicates("COMMENT_ID").merge(labels, left_on="COMMENT_ID", right_on="id")  # your own id
    assert len(joined) == len(labels) and (joined["CLASS"] == joined["gold"]).all()
    assert set(labels["split"]) == {"train"}
    assert set(labels["label_name"]) == {"HAM", "SPAM"}
    decided = labels[labels["decided"]]  # uncovered items (a tie of the prior) get a class drawn per item
    assert ((decided["label"] == decided["gold"]).mean()) > 0.8 and len(decided) > 0.6 * len(labels)
    scores = result.noise_scores
    assert set(scores["detector"]) == {"confident_learning"} and scores["score"].between(0, 1).all()
    assert len(result.weights) == len(scores) and "weight" in result.weights
    assert list(scores.columns[:2]) == list(result.weights.columns[:2]) == ["item_id", "id"]
    assert set(scores["id"]) <= set(frame["COMMENT_ID"])


def test_everything_is_recorded_in_the_project_database(notebook):
    pipe, result, _, root = notebook
    runs = pipe.sql("select stage, status, run_id from runs order by started_at")
    assert list(runs["stage"]) == ["ingest", "label", "detect", "export"] and set(runs["run_id"]) == {result.run_id}
    manifest = json.loads((root / "export" / ".manifest.json").read_text())
    assert manifest["run_id"] == result.run_id
    with pytest.raises(ValueError, match="read-only"):
        pipe.sql("delete from items")
    # The CLI reads what the notebook wrote.
    out = subprocess.run([sys.executable, "-m", "thresher.cli", "sql", "select count(*) as n from labels", "--db",
                          str(root / "t.duckdb"), "--format", "csv"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.splitlines()[1] == str(len(result.labels)), out.stderr


def test_an_unchanged_stage_is_reused_and_one_stage_runs_alone(notebook):
    pipe, result, _, _ = notebook
    again = pipe.run_stage("detect")
    assert again["cached"] and again["run_id"] == result.run_id
    forced = pipe.run_stage("detect", force=True)
    assert not forced.get("cached") and forced["run_id"] != result.run_id
    with pytest.raises(ValueError, match="must be one of"):
        pipe.run_stage("train")


def test_the_curated_view_speaks_in_the_users_ids_and_class_names(notebook):
    pipe, result, frame, root = notebook
    curated = pipe.sql("select item_id, id, final_label, final_label_name, gold, gold_name from curated")
    assert set(curated["id"]) == set(frame["COMMENT_ID"]) and (curated["item_id"] == "youtube:" + curated["id"]).all()
    names = {0: "HAM", 1: "SPAM"}
    assert (curated["final_label"].map(names) == curated["final_label_name"]).all()
    assert (curated["gold"].map(names) == curated["gold_name"]).all()
    assert list(pipe.sql("select name from classes order by class_id")["name"]) == ["HAM", "SPAM"]

    shards = pd.read_parquet(root / "export")
    assert (shards["item_id"] == "youtube:" + shards["id"]).all() and set(shards["id"]) <= set(frame["COMMENT_ID"])
    assert len(frame.merge(shards, left_on="COMMENT_ID", right_on="id")) >= len(shards)  # back onto your rows


def test_the_same_data_is_written_once(notebook):
    _, _, _, root = notebook
    assert len(list((root / "inputs").glob("*.parquet"))) == 1


def test_bad_arguments_get_clear_errors(tmp_path):
    import thresher

    with pytest.raises(TypeError, match="PipelineConfig, a dict or a path"):
        thresher.Pipeline(42)
    with pytest.raises(ValueError, match="classes"):
        thresher.Pipeline({"sources": [{"path": "x.csv", "dataset": "d"}]}, base_dir=tmp_path)
    with pytest.raises(TypeError, match="DataFrame or an Arrow table"):
        thresher.Pipeline({"classes": ["A", "B"], "labels_from": "given"}, data=[1, 2], base_dir=tmp_path)


def test_class_names_with_quotes_come_back_as_written(tmp_path):
    import thresher

    frame = pd.DataFrame({"text": ["yes please", "no thanks", "yes", "maybe"]})
    config = {"classes": ["don't", 'say "do"'], "db": str(tmp_path / "q.duckdb"), "stages": ["ingest", "label"],
              "labeling": {"model": {"model": "majority"}, "lfs": [
                  {"kind": "keyword", "name": "yes", "label": 'say "do"', "terms": ["yes"]},
                  {"kind": "keyword", "name": "no", "label": "don't", "terms": ["no"]}]}}
    labels = thresher.Pipeline(config, data=frame, split="train").run().labels
    decided = labels[labels["decided"]].sort_values("text")
    assert list(decided["label_name"]) == ["don't", 'say "do"', 'say "do"']


def test_a_database_without_class_names_gets_them_at_the_next_run(tmp_path):
    """A database migrated from before the classes table has items but no names: the next run ingests
    again (adding nothing) so that the views name the classes."""
    import duckdb
    import thresher

    frame = pd.DataFrame({"text": ["yes please", "no thanks"]})
    config = {"classes": ["no", "yes"], "db": str(tmp_path / "m.duckdb"), "stages": ["ingest", "label"],
              "labeling": {"model": {"model": "majority"}, "lfs": [
                  {"kind": "keyword", "name": "yes", "label": "yes", "terms": ["yes"]}]}}
    pipe = thresher.Pipeline(config, data=frame)
    pipe.run()
    with duckdb.connect(str(tmp_path / "m.duckdb")) as con:
        con.execute("DELETE FROM classes")  # as a schema 8 database has none
    assert pipe.sql("select label_name from labelled")["label_name"].isna().all()
    again = pipe.run()
    assert not again.summaries["ingest"].get("cached") and again.summaries["ingest"]["new_items"] == 0
    assert pipe.run().summaries["ingest"]["cached"]
    assert set(pipe.sql("select label_name from labelled where decided")["label_name"]) == {"yes"}


def test_a_stage_list_runs_those_stages_and_exports_without_detect(tmp_path, shared_data):
    import thresher
    from tests.conftest import minimal_config

    config = minimal_config(tmp_path, shared_data, "stages: [export, label, ingest]  # run in pipeline order\n")
    pipe = thresher.Pipeline(config)
    result = pipe.run()
    assert list(result.summaries) == ["ingest", "label", "export"]
    manifest = json.loads((tmp_path / "export" / ".manifest.json").read_text())
    assert manifest["detect_run"] is None and manifest["weights"]["methods"] == ["uniform"]
    shards = pd.read_parquet(tmp_path / "export")
    assert len(shards) == result.summaries["export"]["rows"] > 0 and (shards["weight"] == 1.0).all()
    assert list(pipe.sql("select stage from runs order by started_at")["stage"]) == ["ingest", "label", "export"]
    with pytest.raises(ValueError, match="stages lists 'select' but there is no 'select' section"):
        thresher.Pipeline(minimal_config(tmp_path, shared_data, "stages: [ingest, select]\n"))
    with pytest.raises(ValueError, match="stages lists 'clean'; the stages are ingest, label"):
        thresher.Pipeline(minimal_config(tmp_path, shared_data, "stages: [clean]\n"))


def test_a_label_only_crowd_runs_end_to_end_and_detect_says_why_it_checked_nothing(tmp_path, shared_data):
    """Web search relevance as published: query-URL pairs known by number only (no text), 177 workers'
    grades in long form. The items come from the gold file with ``text: null``; Dawid-Skene labels them;
    detect has no text features, so it checks nothing and says so; the export keeps every item, weight 1."""
    import thresher

    folder = shared_data / "zhou2012_web_search_relevance_crowd"
    config = {"classes": ["1", "2", "3", "4", "5"],
              "sources": [{"path": str(folder / "gold.csv"), "dataset": "web", "split": "train",
                           "columns": {"id": "item", "gold": "gold", "text": None},
                           "answers": {"path": str(folder / "answers.csv")}}],
              "labeling": {"source_votes": True, "model": {"model": "dawid_skene"}},
              "export": {"splits": "all"}, "stages": ["ingest", "label", "detect", "export"]}
    result = thresher.Pipeline(config, db=str(tmp_path / "t.duckdb"), out_dir=str(tmp_path / "export")).run()
    ingested = result.summaries["ingest"]  # 12 answered pairs have no gold row: their answers are unknown_item
    assert ingested["new_items"] == 2653 and set(ingested["rejected"]) == {"unknown_item"}
    assert result.summaries["label"]["accuracy"]["train"]["denoised"] >= 0.82  # measured 0.829
    detect = result.summaries["detect"]
    assert detect["n_issues"] == 0 and not detect["flags_used"] and "no item has text" in detect["warnings"][0]
    from thresher.report import build_report
    from thresher.storage.schema import connect

    con = connect(tmp_path / "t.duckdb", read_only=True)
    assert "Nothing checked</b>: no item has text" in build_report(con, config["classes"]).html()
    con.close()
    shards = pd.read_parquet(tmp_path / "export")
    assert len(shards) == 2653 and (shards["weight"] == 1.0).all() and (shards["text"] == "").all()
    with pytest.raises(ValueError, match="known by their id: set columns.id"):
        thresher.Pipeline({**config, "sources": [{**config["sources"][0], "columns": {"text": None}}]})


def test_a_run_result_shows_its_own_run_after_a_later_one(tmp_path, shared_data):
    """``RunResult`` reads the runs it made (each stage's run id), once: a later run with another tie
    policy does not change what the first result shows, and a second access is the same frame."""
    import thresher
    from tests.conftest import minimal_config

    config = yaml.safe_load(minimal_config(tmp_path, shared_data).read_text())
    first = thresher.Pipeline(config, base_dir=tmp_path).run()
    undecided = int((~first.labels["decided"]).sum())
    assert undecided > 0 and first.labels is first.labels  # majority-vote ties, left undecided (abstain)
    config["labeling"]["model"]["tie_break"] = "random"
    second = thresher.Pipeline(config, base_dir=tmp_path).run()
    assert second.summaries["label"]["run_id"] != first.summaries["label"]["run_id"]
    assert int((~second.labels["decided"]).sum()) < undecided  # ties decided now (only uncovered items left)
    assert int((~first.labels["decided"]).sum()) == undecided  # the first result is still about its run
    fresh = thresher.Pipeline(config, base_dir=tmp_path).labels(run_id=first.summaries["label"]["run_id"])
    assert fresh["decided"].tolist() == first.labels["decided"].tolist()
    with pytest.raises(LookupError, match="no select stage"):
        first.selection
