"""A person's answers (the reviews table): stored at once, imported and exported, and winning in curated
and in the export; safe against a killed process and a stage holding the database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import YOUTUBE_EXAMPLE

CLASSES = ["HAM", "SPAM"]


@pytest.fixture
def project(tmp_path):
    """One video's comments, labelled by the example's keyword rules and exported."""
    import thresher

    frame = pd.read_csv(YOUTUBE_EXAMPLE / "data" / "Youtube01-Psy.csv")
    config = {"classes": CLASSES, "db": str(tmp_path / "r.duckdb"), "stages": ["ingest", "label", "export"],
              "export": {"out_dir": str(tmp_path / "export"), "splits": "all"},
              "labeling": {"model": {"model": "majority"}, "lfs": [
                  {"kind": "keyword", "name": "subscribe", "label": "SPAM", "terms": ["subscribe", "channel"]},
                  {"kind": "keyword", "name": "song", "label": "HAM", "terms": ["song", "love"]}]}}
    pipe = thresher.Pipeline(config, data=frame, columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"},
                             dataset="youtube", split="train")
    pipe.run()
    return pipe, frame, tmp_path


def _one(pipe, query: str):
    return pipe.sql(query).iloc[0].tolist()


def test_an_answer_replaces_the_reviewers_earlier_one_and_undo_takes_it_back(project):
    from thresher.storage.reviews import record_answer, remove_answer

    pipe, _, _ = project
    db = pipe.config.db
    item = _one(pipe, "select item_id from labelled where decided and label = 0 order by item_id limit 1")[0]
    record_answer(db, item, "ana", 1)
    record_answer(db, item, "ana", 0)
    record_answer(db, item, "bo", None)  # unsure: stored, but labels nothing
    assert pipe.sql("select reviewer, coalesce(label, -1) as label from reviews order by reviewer").values.tolist() == [
        ["ana", 0], ["bo", -1]]  # bo: unsure (NULL)
    assert _one(pipe, f"select label, reviewer, answers from reviewed where item_id = '{item}'") == [0, "ana", 1]
    assert remove_answer(db, item, "ana") and not remove_answer(db, item, "ana")
    assert pipe.sql("select count(*) as n from reviewed")["n"][0] == 0
    with pytest.raises(LookupError, match="No item 'youtube:nope'"):
        record_answer(db, "youtube:nope", "ana", 1)
    with pytest.raises(ValueError, match="reviewer name"):
        record_answer(db, item, " ", 1)


def test_a_reviewed_label_wins_in_curated_and_in_the_export(project):
    from thresher.storage.reviews import record_answer

    pipe, _, tmp_path = project
    db = pipe.config.db
    wrong = pipe.sql("select item_id, id, label, gold from labelled where decided and label <> gold order by item_id limit 3")
    assert len(wrong) == 3  # the keyword rules get some comments wrong
    for item, gold in zip(wrong["item_id"], wrong["gold"]):
        record_answer(db, item, "ana", int(gold))
    curated = pipe.sql("select item_id, final_label, final_label_from, reviewed_label, reviewer from curated "
                       "where reviewed_label is not null order by item_id")
    assert list(curated["final_label"]) == list(wrong["gold"]) and set(curated["final_label_from"]) == {"review"}
    summary = pipe.run_stage("export")
    assert summary["reviewed"] == {"rows": 3, "changed": 3}
    manifest = json.loads((tmp_path / "export" / ".manifest.json").read_text())
    assert manifest["reviewed"] == {"rows": 3, "changed": 3}
    shards = pd.read_parquet(tmp_path / "export")
    fixed = shards.set_index("item_id").loc[list(wrong["item_id"])]
    assert list(fixed["label"]) == list(wrong["gold"]) and (fixed["label"] == fixed["gold_label"]).all()
    assert all(p[int(label)] == 1.0 for p, label in zip(fixed["probs"], fixed["label"]))  # one-hot: a person's answer


def test_answers_import_from_another_tool_and_export_round_trips(project, tmp_path):
    from thresher.storage.reviews import export_answers, import_answers
    from thresher.storage.schema import connect

    pipe, frame, _ = project
    db = pipe.config.db
    ids = list(frame["COMMENT_ID"].drop_duplicates()[:4])
    answers = tmp_path / "answers.csv"
    answers.write_text("id,label,reviewer\n"
                       f"{ids[0]},SPAM,ana\n{ids[1]},0,ana\n{ids[2]},,bo\n"   # a name, an id, unsure
                       "not-an-id,SPAM,ana\n"                                   # no such item
                       f"{ids[3]},EGGS,ana\n"                                   # no such class
                       f"youtube:{ids[3]},SPAM,ana\n")                          # an item_id in the id column
    summary = import_answers(db, answers, CLASSES)
    assert summary.as_dict() == {"source": str(answers), "rows": 6, "stored": 3,
                                 "rejected": {"unknown_item": 2, "unknown_class": 1}}
    rejects = pipe.sql(f"select line, reason from rejects where source = '{answers}' order by line").values.tolist()
    assert rejects == [[5, "unknown_item"], [6, "unknown_class"], [7, "unknown_item"]]
    assert import_answers(db, answers, CLASSES).stored == 3 and len(pipe.sql("select * from reviews")) == 3  # again: same
    con = connect(db, read_only=True)
    try:
        assert export_answers(con, tmp_path / "out.csv") == 3 and export_answers(con, tmp_path / "out.jsonl") == 3
    finally:
        con.close()
    exported = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert set(exported["id"]) == set(ids[:3]) and set(exported["label_name"]) == {"SPAM", "HAM", ""}
    first = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {r["reviewer"] for r in first} == {"ana", "bo"}
    before = pipe.sql("select item_id, reviewer, label from reviews order by all")
    from thresher.storage.reviews import _write  # the same answers, imported again from the export into a cleared table

    _write(db, lambda con: con.execute("DELETE FROM reviews"))
    assert import_answers(db, tmp_path / "out.csv", CLASSES).stored == 3
    assert pipe.sql("select item_id, reviewer, label from reviews order by all").equals(before)


def test_an_answer_survives_a_killed_process_and_waits_for_a_running_stage(project):
    """A child stores an answer and is killed with SIGKILL right after; another holds the database as a
    stage does while an answer is given: the answer waits, then lands."""
    pipe, _, tmp_path = project
    db = pipe.config.db
    items = pipe.sql("select item_id from items order by item_id limit 2")["item_id"].tolist()
    store = (f"import os, signal\nfrom thresher.storage.reviews import record_answer\n"
             f"record_answer({db!r}, {items[0]!r}, 'ana', 1)\nprint('stored', flush=True)\n"
             "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", store], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9 and "stored" in done.stdout, done.stderr[-2000:]
    assert pipe.sql("select label from reviews")["label"].tolist() == [1]

    hold = ("import sys, time, duckdb\n"
            f"con = duckdb.connect({db!r})\nprint('holding', flush=True)\ntime.sleep(3)\ncon.close()\n")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        from thresher.storage.reviews import record_answer

        record_answer(db, items[1], "ana", 0, timeout=120)  # waits for the holder to let go
    finally:
        holder.wait(timeout=60)
    assert sorted(pipe.sql("select label from reviews")["label"].tolist()) == [0, 1]
    assert Path(db).exists()


def test_the_reviews_commands_import_and_export(project, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from thresher.cli import app

    pipe, frame, _ = project
    config = tmp_path / "thresher.yaml"
    config.write_text(yaml.safe_dump(pipe.config.model_dump(mode="json")))
    answers = tmp_path / "answers.jsonl"
    first = frame["COMMENT_ID"].iloc[0]
    answers.write_text(json.dumps({"id": first, "label": "SPAM"}) + "\n" + json.dumps({"id": "nope", "label": "HAM"}) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["reviews", "import", str(config), str(answers), "--reviewer", "ana"])
    assert result.exit_code == 0, result.output
    assert "2 rows read, 1 answers stored, rejected unknown_item: 1" in result.output
    result = runner.invoke(app, ["reviews", "export", str(config), "--out", str(tmp_path / "all.csv")])
    assert result.exit_code == 0 and "wrote 1 answers" in result.output, result.output
    row = pd.read_csv(tmp_path / "all.csv").iloc[0]
    assert (row["id"], row["label_name"], row["reviewer"]) == (first, "SPAM", "ana")


def test_each_lf_is_judged_by_the_answers_in_sql_the_lfs_command_and_the_report(project, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from thresher.cli import app
    from thresher.storage.reviews import record_answer

    pipe, _, _ = project
    db = pipe.config.db
    spam = pipe.sql("select v.item_id from votes v where v.lf = 'subscribe' order by item_id limit 4")["item_id"].tolist()
    for item, answer in zip(spam, [1, 1, 1, 0]):  # the subscribe rule votes SPAM: right 3 times of 4
        record_answer(db, item, "ana", answer)
    record_answer(db, spam[0], "bo", None)  # unsure answers judge nothing
    rows = pipe.sql("select lf, reviewed_votes, reviewed_accuracy from lf_reviewed order by lf")
    subscribe = rows[rows["lf"] == "subscribe"].iloc[0]
    assert (subscribe["reviewed_votes"], subscribe["reviewed_accuracy"]) == (4, 0.75)
    expected = pipe.sql("select v.lf, avg((v.vote = r.label)::double) as acc from votes v join reviews r using (item_id) "
                        "where r.label is not null group by v.lf order by v.lf")
    assert rows["reviewed_accuracy"].tolist() == expected["acc"].tolist()  # the song rule too, where it voted on them
    config = tmp_path / "thresher.yaml"
    config.write_text(yaml.safe_dump(pipe.config.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["lfs", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "reviewed" in result.output and "0.750" in result.output, result.output
    result = CliRunner().invoke(app, ["report", str(config), "--out", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text()
    assert "<th>accuracy on reviewed items</th>" in html and "<td>0.750</td><td>4</td>" in html
