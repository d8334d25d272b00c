"""Detect's classifier chosen from the given labels (``C: auto``): on real rule noise, without gold."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.reweighting.detect.stage import DetectConfig, detect
from thresher.reweighting.detect.tuning import stratified_sample
from tests.labeling.test_rules import TREC_CLASSES, TREC_LONG, ingest_trec


@pytest.fixture
def trec_rules(con, shared_data, tmp_path):
    """TREC train+valid+test labelled by majority vote of its 68 ImplyLoss rules (about 46 % wrong)."""
    folder = ingest_trec(con, shared_data, tmp_path)
    label(con, LabelingConfig(classes=TREC_CLASSES, model={"model": "majority"}, lfs=[
        {"kind": "rule_file", "path": str(folder / "rule.txt"), "label_map": TREC_LONG}]), run_id="mv")
    return con


@pytest.mark.quality
@pytest.mark.slow
def test_auto_c_is_chosen_on_the_given_labels_and_detects_rule_noise_better(trec_rules):
    tuned = detect(trec_rules, DetectConfig(), run_id="auto", label_run="mv", classes=TREC_CLASSES)
    fixed = detect(trec_rules, DetectConfig(C=1.0, features={"tfidf": {"min_df": 1}}), run_id="fixed", label_run="mv",
                   classes=TREC_CLASSES)
    choice = tuned.features["tuned"]
    assert len(choice["candidates"]) == 6 and 4000 < choice["rows"] <= 5000  # all checked items (fewer than 5000)
    best = min(choice["candidates"], key=lambda c: c["oof_log_loss"])
    assert (tuned.features["C"], tuned.features["min_df"]) == (best["C"], best["min_df"])
    assert fixed.features["tuned"] is None and fixed.features["C"] == 1.0
    # Measured (majority-vote labels, ties left undecided): with C=1, min_df=1 the AUROC at finding
    # wrong rule labels is 0.425, worse than chance; the chosen C=10, min_df=2 gets 0.558.
    assert (tuned.features["C"], tuned.features["min_df"]) == (10.0, 2)
    auc_tuned = tuned.detectors["confident_learning"]["auroc"]
    auc_fixed = fixed.detectors["confident_learning"]["auroc"]
    assert auc_tuned > 0.53 and auc_tuned > auc_fixed + 0.08, (auc_tuned, auc_fixed)


@pytest.mark.slow
def test_the_choice_reads_no_gold_and_honours_a_set_min_df(trec_rules):
    """Same labels with gold removed: the same choice; a min_df set in the config is not tuned."""
    config = DetectConfig(features={"tfidf": {"min_df": 2}}, tune={"rows": 1000, "C": [0.1, 10.0]})
    first = detect(trec_rules, config, run_id="a", label_run="mv", classes=TREC_CLASSES).features
    trec_rules.execute("UPDATE items SET gold = NULL")
    second = detect(trec_rules, config, run_id="b", label_run="mv", classes=TREC_CLASSES).features
    assert first["tuned"] == second["tuned"] and first["min_df"] == 2 and first["tuned"]["min_df"] is None
    assert [c["C"] for c in first["tuned"]["candidates"]] == [0.1, 10.0]


def test_the_streamed_path_tunes_on_a_sample_of_texts(trec_rules):
    summary = detect(trec_rules, DetectConfig(stream_above=1000, train_rows=1000, tune={"rows": 800, "C": [1.0, 10.0],
                                                                                       "min_df": [2]}),
                     run_id="s", label_run="mv", classes=TREC_CLASSES)
    assert summary.features["kind"] == "hashed tf-idf, streamed" and summary.features["tuned"]["rows"] >= 800
    assert summary.features["C"] in (1.0, 10.0) and summary.n_checked > 4500


def test_stratified_sample_keeps_every_class_for_the_folds():
    labels = np.array([0] * 10_000 + [1] * 7 + [2] * 3000)
    picked = stratified_sample(labels, 1000, 5, 0)
    counts = np.bincount(labels[picked])
    assert counts[1] == 5 and 700 < counts[0] < 800  # a rare class: n_folds of it and 200 < counts[2] < 260
    assert (np.diff(picked) > 0).all()
    assert len(stratified_sample(labels[:500], 1000, 5, 0)) == 500
