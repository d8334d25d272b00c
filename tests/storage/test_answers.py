"""Crowd answers in long form (item, worker, answer): every worker an LF without listing them, every bad
row a reject with its reason, re-ingest idempotent; checked on a real crowd set (the quiz sets)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest


def test_long_answers_become_one_lf_per_worker_and_bad_rows_are_rejects(con, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,text\na,win cash now\nb,lunch at noon?\nc,click this link\n")
    answers = tmp_path / "answers.csv"
    answers.write_text("item,worker,answer\n"
                       "a,w1,SPAM\n"            # 2
                       "a,w2,1\n"               # 3: a class id
                       "b,w1,HAM\n"             # 4
                       "b,w2,skip\n"            # 5: the abstain value
                       "c,w1,SPAM\n"            # 6
                       "c,w3,HAM\n"             # 7
                       "z,w1,HAM\n"             # 8: no such item
                       "a,w3,MAYBE\n"           # 9: not a class
                       "b,,HAM\n"               # 10: no worker
                       "a,w1,SPAM\n"            # 11: an exact repeat
                       "c,w1,HAM\n"             # 12: the same worker, another answer
                       '"b,w4,HAM\n')           # 13: an unterminated quote
    source = SourceConfig(path=str(items), dataset="crowd", columns={"text": "text", "id": "id"},
                          answers={"path": str(answers), "abstain": "skip"})
    config = IngestConfig(classes=["HAM", "SPAM"], sources=[source])
    summary = ingest(con, config)
    assert summary.new_items == 3 and summary.answers == 5
    assert summary.as_dict()["sources"][1] | {"source": ""} == {
        "source": "", "rows": 12, "new_items": 0, "already_present": 0, "answers": 5, "abstained": 1, "blank_lines": 0,
        "rejected": {"unknown_item": 1, "invalid_answer": 1, "missing_field": 1, "duplicate_row": 1,
                     "conflicting_answer": 1, "unparseable": 1}}
    rejects = con.execute("SELECT line, reason, detail, raw FROM rejects WHERE source = ? ORDER BY line",
                          [str(answers)]).fetchall()
    assert [(line, reason) for line, reason, *_ in rejects] == [
        (8, "unknown_item"), (9, "invalid_answer"), (10, "missing_field"), (11, "duplicate_row"),
        (12, "conflicting_answer"), (13, "unparseable")]
    assert rejects[0][3].rstrip() == "z,w1,HAM" and "no item 'z' in dataset 'crowd'" in rejects[0][2]
    assert "line 6" in rejects[4][2]
    votes = con.execute("SELECT item_id, lf, vote FROM source_votes ORDER BY ALL").fetchall()
    assert votes == [("crowd:a", "w1", 1), ("crowd:a", "w2", 1), ("crowd:b", "w1", 0), ("crowd:c", "w1", 1),
                     ("crowd:c", "w3", 0)]
    # Again: nothing new, nothing lost, no reject twice
    again = ingest(con, config)
    assert again.answers == 0 and again.sources[1].already_present == 5
    assert con.execute("SELECT count(*) FROM source_votes").fetchall()[0][0] == 5
    assert con.execute("SELECT count(*) FROM rejects").fetchall()[0][0] == 6
    # An answer changed in the file since: a reject that says so, the stored vote kept
    answers.write_text("item,worker,answer\na,w1,HAM\n")
    ingest(con, config)
    changed = con.execute("SELECT reason, detail FROM rejects WHERE line = 2").fetchall()
    assert changed[0][0] == "conflicting_answer" and "earlier ingest" in changed[0][1]
    result = label(con, LabelingConfig(classes=["HAM", "SPAM"], source_votes=True, model={"model": "majority"}),
                   run_id="crowd")
    assert result.n_lfs == 3 and result.n_votes == 5


def test_answers_need_the_items_id_column(tmp_path):
    with pytest.raises(ValueError, match="has answers but no columns.id"):
        SourceConfig(path="items.csv", dataset="d", answers={"path": "answers.csv"})


def test_the_quiz_crowd_as_published(con, tmp_path, shared_data):
    """Li et al.'s six quiz sets: 155 questions with text, 360 workers, 8,930 answers in long form, read
    as published (the answer key joined to the questions for scoring); majority vote as the provenance
    measures it (0.605 with random ties)."""
    folder = shared_data / "li2017_quiz_crowd"
    items = pd.read_csv(folder / "items.csv").merge(pd.read_csv(folder / "gold.csv"), on="item")
    items["text"] = items["question"] + " | " + items[list("ABCDEF")].fillna("").agg(" | ".join, axis=1)
    items[["item", "text", "gold"]].to_csv(tmp_path / "items.csv", index=False)
    source = SourceConfig(path=str(tmp_path / "items.csv"), dataset="quiz",
                          columns={"text": "text", "id": "item", "gold": "gold"},
                          answers={"path": str(folder / "answers.csv")})
    summary = ingest(con, IngestConfig(classes=list("ABCDEF"), sources=[source]))
    assert summary.new_items == 155 and summary.answers == 8930 and not summary.rejected
    assert con.execute("SELECT count(DISTINCT lf) FROM source_votes").fetchall()[0][0] == 360
    result = label(con, LabelingConfig(classes=list("ABCDEF"), source_votes=True, model={"model": "majority"}),
                   run_id="mv")
    accuracy = con.execute("SELECT avg((l.label = i.gold)::INT) FROM labels l JOIN items i USING (item_id) "
                           "WHERE l.run_id = 'mv'").fetchall()[0][0]
    assert result.n_lfs == 360 and 0.58 <= accuracy <= 0.65, accuracy
    assert json.dumps(summary.as_dict())  # the summary is plain JSON for the runs table


def test_numeric_ratings_become_classes_through_thresholds(con, tmp_path):
    """1-5 star ratings as answers and as vote columns, binned to classes; a rating past the last bound
    or not a number is a reject with its reason, never a silent drop."""
    items = tmp_path / "items.csv"
    items.write_text("id,text,r1,r2\na,great,5,4.5\nb,awful,1,2\nc,fine,3,\nd,odd,9,1\n")
    answers = tmp_path / "ratings.csv"
    answers.write_text("item,worker,answer\na,w1,5\nb,w1,1.5\nc,w1,3\nc,w2,lots\nd,w1,6\n")
    bins = {"bins": [[2.5, "negative"], [3.5, "neutral"], [5.5, "positive"]]}  # above 5.5: no class
    source = SourceConfig(path=str(items), dataset="r", columns={"text": "text", "id": "id"},
                          votes={"columns": ["r1", "r2"], "abstain": None, "thresholds": bins},
                          answers={"path": str(answers), "thresholds": bins})
    summary = ingest(con, IngestConfig(classes=["negative", "neutral", "positive"], sources=[source]))
    assert summary.new_items == 3  # item d's 9 stars in r1 is past the last bound: a reject
    rejects = con.execute("SELECT source, line, reason FROM rejects ORDER BY source, line").fetchall()
    assert [(line, reason) for source, line, reason in rejects if source == str(items)] == [(5, "wrong_type")]
    assert [(line, reason) for source, line, reason in rejects if source == str(answers)] == [
        (5, "invalid_answer"), (6, "invalid_answer")]  # 'lots' is no rating; 6 stars is past the last bound
    votes = con.execute("SELECT item_id, lf, vote FROM source_votes ORDER BY ALL").fetchall()
    assert votes == [("r:a", "r1", 2), ("r:a", "r2", 2), ("r:a", "w1", 2), ("r:b", "r1", 0), ("r:b", "r2", 0),
                     ("r:b", "w1", 0), ("r:c", "r1", 1), ("r:c", "w1", 1)]
    with pytest.raises(ValueError, match="increasing order"):
        SourceConfig(path="x.csv", dataset="d", votes={"columns": ["r"], "thresholds": {"bins": [[3, "b"], [1, "a"]]}})
