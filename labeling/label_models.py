"""The label models, one class each, and their registry: what ``labeling.model`` names.

Each is fitted on a vote matrix L (items x LFs, -1 = abstain) and gives class probabilities for any
L over the same LFs, as scikit-learn estimators do (``fit(L)`` returns the model, ``predict_proba(L)``).
Their contract, checked for every registered model by ``tests/labeling/test_label_models.py``: rows sum
to 1, the same seed gives the same output, and an item no LF voted on gets the model's ``prior_``.
What a model needs (``min_lfs``) and what it cannot use (``needs_multi_class_lfs``: it models votes, not
abstains) are class attributes, which ``model: auto`` reads to leave a candidate out with a reason.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from thresher.core.device import torch_threads
from thresher.labeling.lf.base import ABSTAIN


@contextmanager
def quiet_snorkel() -> Iterator[None]:
    """Silence scipy >= 1.17's dtype-cast FutureWarning raised inside Snorkel; harmless here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _check_L(L: np.ndarray, n_lfs: int | None = None) -> np.ndarray:
    L = np.asarray(L)
    if L.ndim != 2:
        raise ValueError(f"L must be a 2-d label matrix (items x LFs); got an array of shape {L.shape}.")
    if n_lfs is not None and L.shape[1] != n_lfs:
        raise ValueError(f"L must have {n_lfs} LF columns, as the label model was fitted on; got shape {L.shape}.")
    return L


class LabelModelBase(ABC):
    """A label model: ``fit(L)``, then ``predict_proba(L)``; ``prior_`` and ``learned_accuracy_``
    (each LF's learned accuracy, None for models that learn none) once fitted."""

    name: ClassVar[str]
    title: ClassVar[str]  # as messages name it
    min_lfs: ClassVar[int] = 1
    needs_multi_class_lfs: ClassVar[bool] = False

    def __init__(self, cardinality: int, seed: int = 0, **params: Any) -> None:
        if cardinality < 2:
            raise ValueError(f"cardinality must be at least 2; got {cardinality}.")
        self.cardinality, self.seed, self.params = cardinality, seed, params
        self.n_lfs_: int | None = None
        self.prior_: np.ndarray = np.full(cardinality, 1.0 / cardinality)
        self.learned_accuracy_: np.ndarray | None = None

    def fit(self, L: np.ndarray, class_balance: list[float] | None = None) -> "LabelModelBase":
        L = _check_L(L)
        if L.shape[1] < self.min_lfs:
            raise ValueError(f"{self.title} needs at least {self.min_lfs} LFs; there are {L.shape[1]}. "
                             "Add LFs or set model: majority.")
        if self.min_lfs > 1 and not (L != ABSTAIN).any():
            raise ValueError("No LF voted on any item the label model is fitted on: it cannot be fitted.")
        self.n_lfs_ = L.shape[1]
        self._fit(L, class_balance)
        return self

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        if self.n_lfs_ is None:
            raise ValueError(f"This {type(self).__name__} is not fitted yet: call fit(L) first.")
        return self._predict_proba(_check_L(L, self.n_lfs_))

    @abstractmethod
    def _fit(self, L: np.ndarray, class_balance: list[float] | None) -> None:
        """Learn from the checked ``L``; set ``prior_`` (and ``learned_accuracy_`` where the model has them)."""

    @abstractmethod
    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        """Class probabilities (items x cardinality) of the checked ``L``."""


class MajorityVote(LabelModelBase):
    """Snorkel's ``MajorityLabelVoter``: each class's share of an item's votes (no vote: uniform)."""

    name = "majority"
    title = "Majority vote"

    def _fit(self, L: np.ndarray, class_balance: list[float] | None) -> None:
        pass  # nothing to learn; the prior stays uniform, as Snorkel's voter gives an item without votes

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        from snorkel.labeling.model import MajorityLabelVoter

        with quiet_snorkel():
            return MajorityLabelVoter(cardinality=self.cardinality).predict_proba(L)


class SnorkelLabelModel(LabelModelBase):
    """Snorkel's ``LabelModel`` (Ratner et al.): LF accuracies learned from their agreements."""

    name = "label_model"
    title = "Snorkel's LabelModel"
    min_lfs = 3

    def _fit(self, L: np.ndarray, class_balance: list[float] | None) -> None:
        from snorkel.labeling.model import LabelModel

        self.model_ = LabelModel(cardinality=self.cardinality, verbose=False)
        with quiet_snorkel(), torch_threads(1):  # tiny tensors: more threads only wait for each other
            self.model_.fit(L, class_balance=None if class_balance is None else np.asarray(class_balance),
                            n_epochs=self.params.get("n_epochs", 100), lr=self.params.get("lr", 0.01),
                            l2=self.params.get("l2", 0.0), seed=self.seed, progress_bar=False)
            with np.errstate(divide="ignore", invalid="ignore"):  # LFs that never fire: Snorkel divides by 0
                self.learned_accuracy_ = np.clip(np.nan_to_num(self.model_.get_weights(), nan=0.0), 0.0, 1.0)
        self.prior_ = self._predict_proba(np.full((1, L.shape[1]), ABSTAIN))[0]

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        with quiet_snorkel():
            return self.model_.predict_proba(L)


class DawidSkene(LabelModelBase):
    """crowd-kit's ``DawidSkene``: one confusion matrix per LF (see :mod:`thresher.labeling.crowd`)."""

    name = "dawid_skene"
    title = "Dawid-Skene"
    needs_multi_class_lfs = True
    one_coin: ClassVar[bool] = False

    def _fit(self, L: np.ndarray, class_balance: list[float] | None) -> None:
        from thresher.labeling.crowd import fit_dawid_skene

        if not (L != ABSTAIN).any():
            raise ValueError("No LF voted on any item the label model is fitted on: it cannot be fitted.")
        self._predict, self.learned_accuracy_ = fit_dawid_skene(L, cardinality=self.cardinality,
                                                                n_iter=self.params.get("n_iter", 100),
                                                                one_coin=self.one_coin)
        self.prior_ = self._predict(np.full((1, L.shape[1]), ABSTAIN))[0]

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        return self._predict(L)


class OneCoinDawidSkene(DawidSkene):
    """crowd-kit's ``OneCoinDawidSkene``: one skill per LF (right with that chance, else any other class
    alike). Far fewer parameters than a confusion matrix per LF, so it suits small crowds and classes
    without a shared meaning (a quiz's option letters)."""

    name = "one_coin"
    title = "One-coin Dawid-Skene"
    one_coin = True


class PluginLabelModel(LabelModelBase):
    """Your own label model, held to the contract the registered ones keep: ``model`` is an object with
    ``fit(L)`` (returning itself) and ``predict_proba(L)`` (items x cardinality, rows summing to 1), or a
    ``module:attribute`` / ``file.py:attribute`` spec, or a class or function called with ``params`` plus
    ``cardinality=`` and ``seed=`` where it takes them. Its output is checked on every call, so a model
    that breaks the contract fails with a message that says how; ``thresher.testing.check_label_model``
    runs the whole contract on it. A fitted ``learned_accuracy_`` (one value per LF) is reported."""

    name = "plugin"
    title = "Your label model"

    def __init__(self, cardinality: int, seed: int = 0, *, model: Any, params: dict[str, Any] | None = None) -> None:
        super().__init__(cardinality, seed=seed)
        self.model, self.model_params = model, dict(params or {})

    def _fit(self, L: np.ndarray, class_balance: list[float] | None) -> None:
        from thresher.core.plugins import fresh

        self.model_ = fresh(self.model, what="label model", params=self.model_params, required=("fit", "predict_proba"),
                            context={"cardinality": self.cardinality, "seed": self.seed})
        fitted = self.model_.fit(L) if class_balance is None else self.model_.fit(L, class_balance=class_balance)
        self.model_ = self.model_ if fitted is None else fitted
        self.prior_ = self._predict_proba(np.full((1, L.shape[1]), ABSTAIN))[0]
        learned = getattr(self.model_, "learned_accuracy_", None)
        self.learned_accuracy_ = (None if learned is None or np.shape(learned) != (L.shape[1],)
                                  else np.asarray(learned, dtype=float))

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        return checked_proba(self.model_.predict_proba(L), len(L), self.cardinality, type(self.model_).__name__)


def checked_proba(probs: Any, n_items: int, cardinality: int, name: str) -> np.ndarray:
    """A label model's ``predict_proba`` output checked: items x cardinality, finite, non-negative, rows summing to 1."""
    probs = np.asarray(probs, dtype=float)
    if probs.shape != (n_items, cardinality):
        raise ValueError(f"Label model {name}: predict_proba must return an array of shape {(n_items, cardinality)} "
                         f"(items x classes); got {probs.shape}.")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(f"Label model {name}: predict_proba returned negative or non-finite values.")
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        worst = int(np.argmax(np.abs(sums - 1)))
        raise ValueError(f"Label model {name}: each row of predict_proba must sum to 1; row {worst} sums to {sums[worst]:.4f}.")
    return probs


LABEL_MODELS: dict[str, type[LabelModelBase]] = {
    cls.name: cls for cls in (MajorityVote, SnorkelLabelModel, DawidSkene, OneCoinDawidSkene)}


def is_plugin(model: Any) -> bool:
    """Whether ``labeling.model.model`` names your own label model (an object, or a spec) rather than a registered one."""
    return not isinstance(model, str) or (model not in LABEL_MODELS and model != "auto")


def build_label_model(params: dict[str, Any], *, cardinality: int, seed: int = 0, plugin: Any = None) -> LabelModelBase:
    """The registered model that ``params["model"]`` names, with the rest of ``params`` as its settings;
    ``plugin``: your own model (``params`` then holds its ``params``)."""
    settings = dict(params)
    name = settings.pop("model")
    if plugin is not None and name not in LABEL_MODELS:
        return PluginLabelModel(cardinality, seed=seed, model=plugin, params=settings.get("params"))
    if name not in LABEL_MODELS:
        raise ValueError(f"The label model must be one of {sorted(LABEL_MODELS)}. Got {name!r} instead.")
    return LABEL_MODELS[name](cardinality, seed=seed, **settings)
