"""thresher's confident learning is cleanlab's own: the same features and folds give the same flags.

The detect stage's flags on 700 UCI YouTube comments (two of the five files, 20 % of the given labels flipped) equal those of
cleanlab's ``find_label_issues`` called directly on scikit-learn's ``cross_val_predict`` probabilities
of the same logistic regression, on the same TF-IDF matrix with the same ``StratifiedKFold`` split.
"""

from __future__ import annotations

import numpy as np
import pytest

from thresher.features import TfidfConfig, tfidf_features
from thresher.reweighting.detect.stage import DetectConfig, detect
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from tests.conftest import YOUTUBE_EXAMPLE


def test_detect_flags_equal_cleanlab_called_directly(con):
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(YOUTUBE_EXAMPLE / "data" / "Youtube0[1-2]-*.csv"), dataset="youtube",
        columns={"text": "CONTENT", "label": "CLASS", "gold": "CLASS", "id": "COMMENT_ID"})]))
    ids = [r[0] for r in con.execute("SELECT item_id FROM items ORDER BY item_id").fetchall()]
    flip = [i for i, f in zip(ids, np.random.default_rng(1).random(len(ids)) < 0.2) if f]
    con.execute("UPDATE items SET label = 1 - label WHERE list_contains($ids, item_id)", {"ids": flip})
    config = DetectConfig(labels_from="given", n_folds=5, C=1.0, random_state=0, detectors=["confident_learning"])
    detect(con, config, run_id="d", label_run=None)
    texts, labels, ours = zip(*con.execute(
        "SELECT i.text, i.label, n.is_issue FROM items i JOIN noise_scores n USING (item_id) "
        "WHERE n.run_id = 'd' ORDER BY i.item_id").fetchall())
    labels = np.array(labels)

    X = tfidf_features(list(texts), TfidfConfig())  # the detect stage's default features
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    pred_probs = cross_val_predict(LogisticRegression(C=1.0, max_iter=2000), X, labels, cv=folds, method="predict_proba")
    theirs = find_label_issues(labels, pred_probs, n_jobs=1)  # one process: its pool would fork this one

    assert len(ours) == len(ids) == 700
    assert 50 < int(theirs.sum()) and np.array_equal(np.array(ours), theirs)


@pytest.mark.quality
def test_tuned_multiclass_detect_flags_equal_cleanlab_on_rule_noise(con, tmp_path):
    """AG News's aggregated rule label (4 classes, 16 % wrong): detect at its defaults (``C: auto`` picks C
    and min_df) flags what cleanlab's ``find_label_issues`` flags on ``cross_val_predict`` probabilities
    of the same logistic regression, features and folds."""
    import json

    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from benchmarks.curation_value import agnews

    data = agnews()
    covered = data.L[:, 0] >= 0
    texts = [t for t, c in zip(data.train.texts, covered) if c]
    labels, gold = data.L[covered, 0], data.train.gold[covered]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": f"{i:05d}", "text": t, "label": int(y), "gold": int(g)}) + "\n"
                            for i, (t, y, g) in enumerate(zip(texts, labels, gold))))
    ingest(con, IngestConfig(classes=data.classes, sources=[SourceConfig(
        path=str(path), dataset="d", columns={"id": "id", "label": "label", "gold": "gold"})]))
    summary = detect(con, DetectConfig(labels_from="given"), run_id="d", label_run=None, classes=data.classes)
    ours = np.array([r[0] for r in con.execute(
        "SELECT n.is_issue FROM items i JOIN noise_scores n USING (item_id) WHERE n.run_id = 'd' ORDER BY i.item_id"
    ).fetchall()])
    C, min_df = summary.features["C"], summary.features["min_df"]
    X = tfidf_features(texts, TfidfConfig(min_df=min_df))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    pred_probs = cross_val_predict(LogisticRegression(C=C, max_iter=2000), X, labels, cv=folds, method="predict_proba")
    theirs = find_label_issues(labels, pred_probs, n_jobs=1)
    assert summary.flags_used and 20 < int(theirs.sum())
    assert int((ours != theirs).sum()) <= 1, f"{int((ours != theirs).sum())} of {len(ours)} flags differ"


@pytest.mark.quality
@pytest.mark.parametrize("name", ["youtube", "sms", "trec", "agnews", "imdb", "quiz"])
def test_detect_flags_equal_cleanlab_on_every_shared_text_dataset(tmp_path, name):
    """Every shared dataset with text, labelled as a user would check it (majority vote of its LFs or
    crowd): detect at its defaults flags what cleanlab's ``find_label_issues`` flags when called on
    ``cross_val_predict`` probabilities with the C and min_df detect chose, its vocabulary cap and
    solver, and the same folds. Measured (benchmarks/detect_equality.py): 0-2 flags differ (of 155 to
    4,723 items), from the solver's tolerance: detect warm-starts its final fit from the tuning fits."""
    from sklearn.metrics import roc_auc_score

    from benchmarks.detect_equality import DATASETS, cleanlab_direct, thresher_flags

    _, classes, texts, labels, gold = DATASETS[name]()
    ours, our_scores, features = thresher_flags(classes, texts, labels, tmp_path)
    checked = np.isin(labels, np.flatnonzero(np.bincount(labels) >= 5))  # what detect checks (n_folds items)
    theirs, their_scores = np.zeros(len(labels), dtype=bool), np.ones(len(labels))
    theirs[checked], their_scores[checked], _ = cleanlab_direct(
        [t for t, c in zip(texts, checked) if c], labels[checked], features["C"], features["min_df"], 50_000, "newton-cg")
    differ = int((ours != theirs).sum())
    assert differ <= max(2, 0.002 * len(labels)), f"{name}: {differ} of {len(labels)} flags differ"
    wrong = labels != gold
    assert abs(roc_auc_score(wrong, -our_scores) - roc_auc_score(wrong, -their_scores)) <= 0.002


@pytest.mark.quality
def test_a_class_that_no_label_uses_changes_no_flag(tmp_path):
    """One candidate cause of a gap on a relation set: a class present in ``classes`` but never among
    the given labels. AG News with such a class added first (every label id shifted by one): detect
    flags exactly the same items."""
    from benchmarks.detect_equality import DATASETS, thresher_flags

    _, classes, texts, labels, _ = DATASETS["agnews"]()
    plain, _, _ = thresher_flags(classes, texts, labels, tmp_path / "plain")
    shifted, _, _ = thresher_flags(["never used", *classes], texts, labels + 1, tmp_path / "shifted")
    assert plain.sum() > 20 and np.array_equal(plain, shifted)
