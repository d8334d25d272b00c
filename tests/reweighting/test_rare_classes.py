"""Rare and absent classes: a class with 3 given labels (fewer than the folds) and one with none
pass through detect, reweight and select; the rare class is kept unflagged and reported."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.reweighting.detect.stage import DetectConfig, detect
from thresher.reweighting.rescale.stage import ReweightConfig, reweight
from thresher.reweighting.select.stage import SelectConfig, select
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from tests.conftest import YOUTUBE_EXAMPLE

CLASSES = ["HAM", "SPAM", "RARE", "ABSENT"]  # ABSENT: no item has it; RARE: three items


@pytest.fixture
def rare_db(con):
    youtube = {"text": "CONTENT", "label": "CLASS", "gold": "CLASS", "id": "COMMENT_ID"}
    ingest(con, IngestConfig(classes=CLASSES, sources=[
        SourceConfig(path=str(YOUTUBE_EXAMPLE / "data" / "Youtube0[1-2]-*.csv"), dataset="youtube", split="train",
                     columns=youtube),
        SourceConfig(path=str(YOUTUBE_EXAMPLE / "data" / "Youtube04-Eminem.csv"), dataset="youtube", split="target",
                     columns=youtube)]))
    ids = [r[0] for r in con.execute("SELECT item_id FROM items WHERE split = 'train' ORDER BY item_id").fetchall()]
    rng = np.random.default_rng(0)
    flip = [i for i, f in zip(ids, rng.random(len(ids)) < 0.2) if f]
    con.execute("UPDATE items SET label = 1 - label WHERE list_contains($ids, item_id)", {"ids": flip})
    rare = ids[:3]
    con.execute("UPDATE items SET label = 2 WHERE list_contains($ids, item_id)", {"ids": rare})
    return con, rare


@pytest.mark.parametrize("stream_above", [100_000, 100])  # in memory, and the streamed path
def test_detect_keeps_a_class_below_the_folds_unflagged_and_says_so(rare_db, stream_above):
    con, rare = rare_db
    summary = detect(con, DetectConfig(labels_from="given", n_folds=5, stream_above=stream_above, C=1.0,  # no tuning
                                       detectors=["confident_learning", "small_loss"]), run_id="d", label_run=None,
                     classes=CLASSES)
    flagged = dict(con.execute("SELECT item_id, bool_or(is_issue) FROM noise_scores WHERE run_id = 'd' "
                               "GROUP BY item_id").fetchall())
    assert len(flagged) == con.execute("SELECT count(*) FROM items WHERE label IS NOT NULL").fetchall()[0][0]
    assert not any(flagged[item] for item in rare)
    assert summary.classes["unchecked"] == {"RARE": 3}
    assert summary.classes["absent"] == ["ABSENT"]
    assert summary.n_issues > 20  # the flipped HAM/SPAM labels are still found
    weights = con.execute("SELECT count(*), count(weight) FROM weights WHERE run_id = 'd'").fetchall()[0]
    assert weights[0] == weights[1] == len(flagged)


@pytest.mark.slow
def test_reweight_and_select_take_rare_and_absent_classes(rare_db):
    con, rare = rare_db
    summary = reweight(con, ReweightConfig(labels_from="given", epochs=2), run_id="w", label_run=None)
    assert summary.n_items == con.execute("SELECT count(*) FROM items WHERE label IS NOT NULL").fetchall()[0][0]
    chosen = select(con, SelectConfig.model_validate({"labels_from": "given", "target": {"split": "target"},
                                                      "budget": 0.5}),
                    classes=CLASSES, run_id="s", label_run=None)
    assert chosen.n_selected > 0
