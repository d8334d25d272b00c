"""Sanity checks on flags: class-level verdicts, flags far above the noise estimate, and a classifier at
chance are warned about and, by default, not used for weights or exclusion."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.conftest import YOUTUBE_EXAMPLE
from thresher.reweighting.detect.sanity import flag_warnings


def _confident(labels: np.ndarray, K: int, p: float = 0.9) -> np.ndarray:
    probs = np.full((len(labels), K), (1 - p) / (K - 1))
    probs[np.arange(len(labels)), labels] = p
    return probs


def test_a_whole_class_flagged_and_flags_far_above_noise_are_warned_about():
    labels = np.repeat([0, 1, 2], 100)
    probs = _confident(labels, 3)
    whole_class = labels == 2
    warnings, numbers = flag_warnings(labels, whole_class, probs, ["a", "b", "c"])
    assert any("flags 100 of the 100 items labelled c (100%)" in w for w in warnings), warnings
    assert any("label noise" in w for w in warnings) and numbers["estimated_noise"] < 0.05
    assert numbers["class_flag_share"] == {"a": 0.0, "b": 0.0, "c": 1.0}
    few = np.zeros(300, dtype=bool)
    few[::50] = True  # 2 % flagged, each class barely touched, a classifier that learned the labels
    assert flag_warnings(labels, few, probs, ["a", "b", "c"])[0] == []


def test_a_detector_on_random_labels_is_at_chance_and_its_flags_are_not_used(tmp_path):
    """The bundled comments with their labels shuffled: no classifier can learn them, so confident
    learning's flags are noise; thresher says so and neither down-weights nor drops by them."""
    import thresher

    frame = pd.concat([pd.read_csv(p) for p in sorted((YOUTUBE_EXAMPLE / "data").glob("Youtube0*.csv"))])
    frame["shuffled"] = np.random.default_rng(0).permutation(frame["CLASS"].to_numpy())
    config = {"classes": ["HAM", "SPAM"], "db": str(tmp_path / "t.duckdb"), "labels_from": "given",
              "detect": {"C": 1.0, "n_folds": 3}, "export": {"drop_label_issues": True, "out_dir": str(tmp_path / "out")}}
    pipe = thresher.Pipeline(config, data=frame, columns={"text": "CONTENT", "label": "shuffled", "id": "COMMENT_ID"},
                             dataset="youtube", split="train")
    result = pipe.run()
    detect, export = result.summaries["detect"], result.summaries["export"]
    assert detect["n_issues"] > 0 and not detect["flags_used"]
    assert any("at chance" in w for w in detect["warnings"]), detect["warnings"]
    sanity = detect["detectors"]["confident_learning"]["sanity"]
    assert 0.4 < sanity["oof_auroc"] <= 0.55
    assert detect["weights"]["method"] == "uniform" and (result.weights["weight"] == 1.0).all()
    assert "label_issue" not in export["excluded"] and "failed a sanity check" in export["notes"][0]
    manifest = json.loads((tmp_path / "out" / ".manifest.json").read_text())
    assert manifest["rows"] == result.summaries["ingest"]["new_items"]  # nothing left out by the flags
