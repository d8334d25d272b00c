"""Your own parts in a pipeline: a detector, a scikit-learn classifier and a label model, named in the
YAML config (``module:attribute`` / ``file.py:attribute``) and passed as objects to ``thresher.Pipeline``,
on the YouTube comments of the bundled example (real data, its gold labels only measured)."""

from __future__ import annotations

import shutil
import textwrap

import numpy as np
import pytest
import yaml

from tests.conftest import YOUTUBE_EXAMPLE

PARTS = textwrap.dedent('''
    import numpy as np

    from thresher.reweighting.detect.base import DetectorResult


    class LossRank:
        """Flags the share ``fraction`` of items whose given label has the lowest out-of-fold probability."""

        def __init__(self, fraction=0.1):
            self.fraction = fraction

        def fit(self, X, labels, *, pred_probs=None):
            self.p_ = pred_probs[np.arange(len(labels)), labels]
            return self

        def result(self):
            return DetectorResult("loss_rank", self.p_, self.p_ <= np.quantile(self.p_, self.fraction))


    class Smoothed:
        """Majority vote with add-alpha smoothing: a label model with one setting."""

        def __init__(self, cardinality, alpha=1.0):
            self.cardinality, self.alpha = cardinality, alpha

        def fit(self, L):
            return self

        def predict_proba(self, L):
            counts = np.stack([(L == k).sum(axis=1) for k in range(self.cardinality)], axis=1) + self.alpha
            return counts / counts.sum(axis=1, keepdims=True)
''')


def _project(tmp_path, detect: dict, model: dict | None = None) -> dict:
    """The example's keyword and regex LFs on two of its videos' comments."""
    config = yaml.safe_load((YOUTUBE_EXAMPLE / "thresher.yaml").read_text())
    shutil.copytree(YOUTUBE_EXAMPLE / "data", tmp_path / "data", dirs_exist_ok=True)
    config["sources"] = [{"path": "data/Youtube0[1-2]-*.csv", "dataset": "youtube", "split": "train",
                          "columns": {"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"}}]
    config["labeling"] = {"lfs": [lf for lf in config["labeling"]["lfs"] if lf["kind"] in ("keyword", "regex")],
                          "model": model or {"model": "majority"}}
    config["detect"] = {"C": 1.0, **detect}
    config["stages"] = ["ingest", "label", "detect"]
    return config


def test_your_detector_classifier_and_label_model_from_the_yaml_config(tmp_path):
    import thresher

    (tmp_path / "my_parts.py").write_text(PARTS)
    config = _project(tmp_path, {"detectors": {"confident_learning": {},
                                               "loss_rank": {"object": "my_parts.py:LossRank", "params": {"fraction": 0.1}},
                                               "naive_bayes": {"object": "sklearn.naive_bayes:MultinomialNB"}},
                                 "use": "loss_rank", "sanity": "warn"},
                      {"model": "my_parts.py:Smoothed", "params": {"alpha": 0.5}})
    (tmp_path / "thresher.yaml").write_text(yaml.safe_dump(config))
    result = thresher.Pipeline(tmp_path / "thresher.yaml").run()

    label = result.summaries["label"]
    assert label["model"] == {"model": f"{tmp_path / 'my_parts.py'}:Smoothed", "params": {"alpha": 0.5}}
    assert label["accuracy"]["train"]["denoised_decided"] > 0.85  # the keyword rules' majority, smoothed
    detect = result.summaries["detect"]
    assert detect["use"] == "loss_rank" and set(detect["detectors"]) == {"confident_learning", "loss_rank", "naive_bayes"}
    share = detect["detectors"]["loss_rank"]["n_issues"] / detect["n_checked"]
    assert 0.09 <= share <= 0.12  # its own rule: the 10 % least likely given labels (ties at the cut included)
    assert detect["n_issues"] == detect["detectors"]["loss_rank"]["n_issues"]  # the detector in use drives the flags
    scores = result.noise_scores
    assert set(scores["detector"]) == {"confident_learning", "loss_rank", "naive_bayes"}
    flagged = result.weights.loc[result.weights["flagged"], "item_id"]
    assert set(flagged) == set(scores[(scores["detector"] == "loss_rank") & scores["is_issue"]]["item_id"])
    assert detect["detectors"]["loss_rank"]["auroc"] > 0.6

    again = thresher.Pipeline(tmp_path / "thresher.yaml").run()
    assert again.summaries["label"]["cached"] and again.summaries["detect"]["cached"]
    (tmp_path / "my_parts.py").write_text(PARTS.replace("self.p_ <= np.quantile", "self.p_ < np.quantile"))
    edited = thresher.Pipeline(tmp_path / "thresher.yaml").run()
    assert not edited.summaries["label"].get("cached") and not edited.summaries["detect"].get("cached")


def test_your_objects_through_the_python_api_are_copied_not_fitted_in_place(tmp_path):
    import thresher
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import ComplementNB

    namespace: dict = {}
    exec(PARTS, namespace)
    LossRank, Smoothed = namespace["LossRank"], namespace["Smoothed"]
    bayes, estimator = ComplementNB(alpha=0.5), LogisticRegression(C=0.5, max_iter=500)
    parts = {"estimator": estimator, "detectors": {"loss_rank": LossRank(0.2), "bayes": bayes},
             "label_model": Smoothed(2, alpha=2.0)}
    config = _project(tmp_path, {"features": {"encoder": "tfidf"}})
    result = thresher.Pipeline(config, base_dir=tmp_path, **parts).run()

    detect = result.summaries["detect"]
    assert detect["features"]["estimator"].startswith("sklearn.linear_model._logistic.LogisticRegression")
    assert "'C': 0.5" in detect["features"]["estimator"] and detect["features"]["C"] is None
    assert set(detect["detectors"]) == {"confident_learning", "loss_rank", "bayes"}
    assert 0.18 <= detect["detectors"]["loss_rank"]["n_issues"] / detect["n_checked"] <= 0.23
    assert result.summaries["label"]["model"]["model"].endswith("Smoothed#" + result.summaries["label"]["model"]["model"].split("#")[1])
    assert not hasattr(bayes, "classes_") and not hasattr(estimator, "coef_")  # copies were fitted, not these

    same = thresher.Pipeline(config, base_dir=tmp_path, **parts).run()
    assert same.summaries["label"]["cached"] and same.summaries["detect"]["cached"]
    other = thresher.Pipeline(config, base_dir=tmp_path, **{**parts, "estimator": LogisticRegression(C=2.0, max_iter=500)})
    assert not other.run_stage("detect").get("cached")  # another setting of the classifier: computed again
    flags = other.noise_scores()
    assert np.isin(["confident_learning", "loss_rank", "bayes"], flags["detector"].unique()).all()


def test_a_bad_part_is_a_clear_error_before_any_work(tmp_path):
    import thresher
    from thresher.pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="Unknown detector 'los_rank'.*object: module:attribute"):
        thresher.Pipeline(_project(tmp_path, {"detectors": {"los_rank": {"fraction": 0.1}}}), base_dir=tmp_path)
    with pytest.raises(ConfigError, match="model must be one of .*majority.*or your own as 'module:attribute'"):
        thresher.Pipeline(_project(tmp_path, {}, {"model": "majorty"}), base_dir=tmp_path)
    pipe = thresher.Pipeline(_project(tmp_path, {"detectors": {"mine": {"object": "numpy:pi"}}}), base_dir=tmp_path)
    pipe.run_stage("ingest")
    pipe.run_stage("label")
    with pytest.raises(TypeError, match=r"The detector 'numpy:pi' needs fit\(\); float has no fit"):
        pipe.run_stage("detect")
    from sklearn.ensemble import HistGradientBoostingClassifier

    dense_only = thresher.Pipeline(_project(tmp_path, {"features": {"encoder": "tfidf"}}), base_dir=tmp_path,
                                   estimator=HistGradientBoostingClassifier())
    with pytest.raises(TypeError, match=r"detect.estimator HistGradientBoostingClassifier: .*features are sparse \(tfidf\)"):
        dense_only.run_stage("detect")
