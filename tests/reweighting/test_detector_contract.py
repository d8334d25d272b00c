"""Every registered noise detector keeps the one contract (reweighting/detect/base.py: Detector)."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.reweighting.detect.registry import DETECTORS, Shared, build_detectors


def _data(seed: int = 0):
    """The public contract check's data: three classes (one small), 10 % of the labels flipped."""
    from thresher.testing.contracts import noisy_blobs

    return noisy_blobs(seed)


def _detector(name: str):
    from sklearn.linear_model import LogisticRegression

    members = {} if name != "ensemble" else {"confident_learning": {}, "small_loss": {}}
    settings = {key: DETECTORS[key].model_validate(value) for key, value in {**members, name: {}}.items()}
    shared = Shared(estimator=LogisticRegression(max_iter=2000), n_folds=5, random_state=0)
    return build_detectors(settings, shared)[name]


@pytest.fixture(scope="module", params=sorted(DETECTORS))
def fitted(request):
    X, labels, wrong = _data()
    return request.param, _detector(request.param).fit(X, labels).result(), labels, wrong


def test_one_score_in_0_1_and_one_flag_per_item(fitted):
    name, result, labels, _ = fitted
    assert result.scores.shape == result.is_issue.shape == labels.shape
    assert result.is_issue.dtype == bool and 0 <= result.scores.min() and result.scores.max() <= 1


def test_lower_scores_mean_wrong_labels(fitted):
    """The direction only: global linear separation cannot see in-distribution flips (see its docstring)."""
    name, result, _, wrong = fitted
    assert result.scores[wrong].mean() < result.scores[~wrong].mean(), name
    assert result.is_issue[wrong].mean() > result.is_issue[~wrong].mean(), name


def test_no_label_loses_every_item(fitted):
    name, result, labels, _ = fitted
    for label in np.unique(labels):
        assert not result.is_issue[labels == label].all(), (name, label)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_the_same_seed_gives_the_same_flags_and_pred_probs_are_used(name):
    X, labels, _ = _data()
    first = _detector(name).fit(X, labels).result()
    again = _detector(name).fit(X, labels).result()
    assert np.array_equal(first.is_issue, again.is_issue) and np.allclose(first.scores, again.scores)
    probs = np.full((len(labels), 3), 0.05)
    probs[np.arange(len(labels)), labels] = 0.9  # every given label looks right
    given = _detector(name).fit(X, labels, pred_probs=probs).result()
    if name != "hybrid":  # the hybrid re-fits on its kept items after the first round
        assert given.is_issue.sum() < first.is_issue.sum()


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_bad_input_is_refused_with_a_clear_error(name):
    X, labels, _ = _data()
    with pytest.raises(ValueError, match="rows|match|shape"):
        _detector(name).fit(X, labels[:-1])


def test_an_unknown_setting_or_an_old_flat_one_is_a_clear_config_error():
    from pydantic import ValidationError

    from thresher.reweighting.detect.stage import DetectConfig

    with pytest.raises(ValidationError, match="thresold"):
        DetectConfig(detectors={"small_loss": {"thresold": 0.1}})
    with pytest.raises(ValidationError, match=r"small_loss_threshold -> detectors\.small_loss\.threshold"):
        DetectConfig.model_validate({"detectors": ["small_loss"], "small_loss_threshold": 0.1})
    assert DetectConfig(detectors=["small_loss"]) == DetectConfig(detectors={"small_loss": {}})


@pytest.mark.parametrize("name", sorted(set(DETECTORS) - {"ensemble"}))
def test_every_registered_detector_passes_the_public_contract_check(name):
    """The check users run on their own detectors (thresher.testing) passes on every registered one."""
    from thresher.testing import check_detector

    check_detector(_detector(name))


def test_the_public_check_names_what_a_bad_detector_breaks():
    from thresher.reweighting.detect.base import DetectorResult
    from thresher.testing import ContractError, check_detector

    class Short:
        def fit(self, X, labels, *, pred_probs=None):
            return self

        def result(self):
            return DetectorResult("short", np.ones(3), np.zeros(3, dtype=bool))

    class Backwards:  # high scores on wrong labels: the direction reversed
        def fit(self, X, labels, *, pred_probs=None):
            self.p = pred_probs[np.arange(len(labels)), labels]
            return self

        def result(self):
            return DetectorResult("backwards", 1 - self.p, self.p > 0.5)

    with pytest.raises(ContractError, match="needs fit"):
        check_detector(object())
    with pytest.raises(ContractError, match="3 scores for 280 items"):
        check_detector(Short())
    with pytest.raises(ContractError, match="lower on wrong labels"):
        check_detector(Backwards)
    with pytest.raises(ContractError, match="could not be made with params"):
        check_detector(Backwards, params={"k": 3})
