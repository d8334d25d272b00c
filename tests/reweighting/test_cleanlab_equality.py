"""thresher's confident learning is cleanlab's own: the same features and folds give the same flags.

The detect stage's flags on 700 UCI YouTube comments (two of the five files, 20 % of the given labels flipped) equal those of
cleanlab's ``find_label_issues`` called directly on scikit-learn's ``cross_val_predict`` probabilities
of the same logistic regression, on the same TF-IDF matrix with the same ``StratifiedKFold`` split.
"""

from __future__ import annotations

import numpy as np

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
