"""The proxy check: what curation changed for a quick model, scored on held-out gold only, and said so
when there is none."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tests.conftest import YOUTUBE_EXAMPLE
from thresher.reweighting.proxy import soft_rows


def test_soft_rows_are_the_expected_cross_entropy():
    X = sp.csr_matrix(np.eye(3))
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    rows, labels, weights = soft_rows(X, probs, np.array([1.0, 2.0, 1.0]))
    assert rows.shape == (6, 3) and list(labels) == [0, 0, 0, 1, 1, 1]
    assert weights.tolist() == pytest.approx([0.9, 0.4, 0.5, 0.1, 1.6, 0.5])
    same, hard, ones = soft_rows(X, np.array([1, 0, 1]))
    assert same is X and list(hard) == [1, 0, 1] and ones.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="one per row"):
        soft_rows(X, probs, np.ones(2))


def test_without_held_out_gold_the_proxy_says_so(tmp_path):
    import thresher

    columns = {"text": "CONTENT", "label": "CLASS", "gold": "CLASS", "id": "COMMENT_ID"}
    config = {"db": str(tmp_path / "t.duckdb"), "classes": ["HAM", "SPAM"], "labels_from": "given",
              "sources": [{"path": str(YOUTUBE_EXAMPLE / "data" / "Youtube01-*.csv"), "dataset": "youtube",
                           "split": "train", "columns": columns}],
              "detect": {"C": 1.0, "n_folds": 3}, "export": {"out_dir": str(tmp_path / "export")}}
    result = thresher.Pipeline(config).run()
    proxy = result.summaries["export"]["proxy"]
    assert proxy["scored"] is False and "no gold labels in a held-out split" in proxy["note"]
    # Gold in a test split: scored, the given labels (exact here) against the export
    config["sources"].append({"path": str(YOUTUBE_EXAMPLE / "data" / "Youtube02-*.csv"), "dataset": "youtube",
                              "split": "test", "columns": columns})
    proxy = thresher.Pipeline(config).run().summaries["export"]["proxy"]
    assert proxy["scored"] and proxy["gold_items"] == 350 and proxy["raw"]["rows"] == 350
    assert proxy["raw"]["accuracy"] > 0.8 and abs(proxy["change"]["accuracy"]) < 0.05, proxy
