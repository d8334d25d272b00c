"""Contract checks for your own parts, as scikit-learn's ``check_estimator`` is for estimators: run one on
your detector or label model before a pipeline does, and it says what breaks the contract.

    from thresher.testing import check_detector, check_label_model

    check_detector(MyDetector(k=3))     # or the class, a 'module:attribute' spec, a scikit-learn classifier
    check_label_model(MyLabelModel)     # a class gets cardinality= and seed= where it takes them

Each raises :class:`ContractError` (an ``AssertionError``) naming the first rule broken. The same checks
run on every registered detector and label model in thresher's own tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ContractError(AssertionError):
    """An object breaks the contract of the family it was checked against."""


def noisy_blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three separable classes (one small), 10 % of the labels flipped: features, given labels, which are wrong."""
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(-3, 1, (120, 4)), rng.normal(3, 1, (120, 4)), rng.normal((0, 6, 0, 0), 1, (40, 4))]
    clean = np.r_[np.zeros(120, int), np.ones(120, int), np.full(40, 2)]
    labels = clean.copy()
    flipped = rng.choice(240, 24, replace=False)
    labels[flipped] = 1 - labels[flipped]
    return X + 10, labels, labels != clean  # non-negative: count-like models (naive Bayes) accept them


def check_detector(detector: Any, *, params: dict[str, Any] | None = None, sparse: bool = True) -> None:
    """Check that ``detector`` keeps the detector contract the detect stage relies on.

    ``detector``: an object with ``fit(X, labels, *, pred_probs=None)`` and ``result()``, its class or a
    function making one (called with ``params``), a ``module:attribute`` spec, or a scikit-learn classifier
    (thresher runs confident learning on its out-of-fold probabilities). Checked: ``result()`` gives a
    ``DetectorResult`` with one score in [0, 1] and one boolean flag per item; it works on dense features,
    and on sparse ones unless ``sparse=False`` (TF-IDF features are sparse; numeric columns and embeddings
    dense); the same input gives the same result; the inputs are left unchanged;
    its scores are lower, and its flags more frequent, on wrong labels than on right ones.
    """
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    from thresher.reweighting.detect.base import checked_result
    from thresher.reweighting.detect.confident_learning import out_of_fold_proba
    from thresher.reweighting.detect.registry import PluginSettings, Shared

    X, labels, wrong = noisy_blobs()
    estimator = LogisticRegression(max_iter=2000)
    pred_probs = out_of_fold_proba(estimator, X, labels, n_folds=5, random_state=0)
    shared = Shared(estimator=estimator, n_folds=5, random_state=0)

    def run(features: Any) -> Any:
        try:
            built = PluginSettings(object=detector, params=params or {}).build(shared)
        except TypeError as exc:
            raise ContractError(f"check_detector: {exc}") from None
        inputs = (features.copy(), labels.copy(), pred_probs.copy())
        try:
            fitted = built.fit(features, labels, pred_probs=pred_probs)
            result = checked_result((built if fitted is None else fitted).result(), len(labels), "checked")
        except (TypeError, ValueError) as exc:
            raise ContractError(f"check_detector: {exc}") from None
        if not (_same(features, inputs[0]) and np.array_equal(labels, inputs[1])
                and np.array_equal(pred_probs, inputs[2])):
            raise ContractError("check_detector: fit changed its inputs (X, labels or pred_probs) in place; "
                                "work on copies.")
        return result

    first = run(X)
    again = run(X)
    if not (np.array_equal(first.is_issue, again.is_issue) and np.allclose(first.scores, again.scores)):
        raise ContractError("check_detector: two fits on the same input gave different results; fix its seed.")
    if sparse:
        run(sp.csr_matrix(X))
    if not first.scores[wrong].mean() < first.scores[~wrong].mean():
        raise ContractError(f"check_detector: scores must be lower on wrong labels (mean {first.scores[wrong].mean():.3f}) "
                            f"than on right ones (mean {first.scores[~wrong].mean():.3f}); lower means more likely mislabelled.")
    if not first.is_issue[wrong].mean() > first.is_issue[~wrong].mean():
        raise ContractError(f"check_detector: flags must be more frequent on wrong labels ({first.is_issue[wrong].mean():.2f}) "
                            f"than on right ones ({first.is_issue[~wrong].mean():.2f}).")


def _same(a: Any, b: Any) -> bool:
    import scipy.sparse as sp

    if sp.issparse(a):
        return bool((a != b).nnz == 0)
    return bool(np.array_equal(a, b))


def _votes(cardinality: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six voters of accuracy 0.6-0.9 that abstain 30 % of the time on 400 items, plus 5 items nobody voted on."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, cardinality, 400)
    L = np.full((400, 6), -1)
    for j, accuracy in enumerate(np.linspace(0.6, 0.9, 6)):
        right = rng.random(400) < accuracy
        other = (truth + rng.integers(1, cardinality, 400)) % cardinality
        L[:, j] = np.where(right, truth, other)
        L[rng.random(400) < 0.3, j] = -1
    return np.vstack([L, np.full((5, 6), -1)]), truth


def check_label_model(model: Any, *, cardinality: int = 3, params: dict[str, Any] | None = None) -> None:
    """Check that ``model`` keeps the label-model contract the label stage relies on.

    ``model``: an object with ``fit(L)`` and ``predict_proba(L)`` (``L``: items x voters, -1 = abstain, else a
    class id below ``cardinality``), its class or a function making one (called with ``params``, and ``cardinality=``
    and ``seed=`` where it takes them), or a ``module:attribute`` spec. Checked: ``predict_proba`` gives
    items x ``cardinality`` probabilities, each row summing to 1, also for items nobody voted on; the same
    input gives the same output; ``L`` is left unchanged; an item all of whose voters agree gets their class.
    """
    from thresher.labeling.label_models import PluginLabelModel

    L, _ = _votes(cardinality)

    def fitted() -> tuple[PluginLabelModel, np.ndarray]:
        wrapped = PluginLabelModel(cardinality, seed=0, model=model, params=params)
        given = L.copy()
        try:
            probs = wrapped.fit(given).predict_proba(given)
        except (TypeError, ValueError) as exc:
            raise ContractError(f"check_label_model: {exc}") from None
        if not np.array_equal(given, L):
            raise ContractError("check_label_model: fit or predict_proba changed L in place; work on a copy.")
        return wrapped, probs

    _, first = fitted()
    _, again = fitted()
    if not np.allclose(first, again):
        raise ContractError("check_label_model: two fits on the same votes gave different probabilities; fix its seed.")
    voted = (L != -1).sum(axis=1)
    unanimous = np.array([voted[i] >= 3 and len(set(L[i][L[i] != -1])) == 1 for i in range(len(L))])
    agreed = np.array([L[i][L[i] != -1][0] for i in np.flatnonzero(unanimous)])
    share = float((first[unanimous].argmax(axis=1) == agreed).mean())
    if share < 0.9:
        raise ContractError(f"check_label_model: items whose 3 or more voters all agree should get that class; "
                            f"only {share:.0%} of {int(unanimous.sum())} do. Is a vote k read as class k?")
