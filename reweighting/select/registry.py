"""Every selection method by name, with its settings: what ``select.method`` may name.

A method's settings sit under its name in the ``select`` section; their ``build`` makes the selector
(imported only then, so reading a config stays light), which follows the
:class:`~thresher.reweighting.select.base.Selector` contract: ``fit(X_pool, y_pool, X_target, y_target)``
then ``select(budget)``. Adding a method: its class in its own module, its settings class here (with its
``name``), listed in ``SELECTORS`` and ``Method``, and a field of that name in ``SelectConfig``; the
contract test then checks it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from thresher.core.config import StageConfig

if TYPE_CHECKING:
    from thresher.reweighting.select.base import Selector


class Settings(StageConfig):
    """The settings of one selection method, and how the select stage drives it: its ``name`` (the
    ``select.method`` value and the field its settings sit under) and the features ``encoder`` it
    reads by default are class attributes."""

    name: ClassVar[str]
    encoder: ClassVar[str] = "tfidf"

    @property
    def reads(self) -> Literal["features", "texts"]:
        """What ``X_pool`` and ``X_target`` are: feature matrices, or the item texts."""
        return "features"

    def check_target(self, target_labels: np.ndarray, source: str) -> None:
        """Refuse a target this method cannot use (``target_labels`` -1 where an item has none)."""

    @abstractmethod
    def build(self, *, random_state: int, count: int, n_pool: int, progress: bool = False) -> Selector:
        """The unfitted selector these settings describe."""

    def prepare(self, X_pool: Any, X_target: Any) -> tuple[Any, Any]:
        """The features in the form the selector takes."""
        return X_pool, X_target

    def choose(self, model: Selector, count: int, y_pool: np.ndarray, y_target: np.ndarray) -> np.ndarray:
        """The ``count`` pool indices the fitted ``model`` selects, best first."""
        return model.select(count)

    def figures(self, model: Any, chosen: np.ndarray, X_pool: Any, X_target: Any, *, random_state: int
                ) -> dict[str, Any]:
        """Method-specific figures for the stage summary."""
        return {}


class ColorFilterConfig(Settings):
    """CoLoR-Filter's models. ``labelled``: logistic regression on the features, the prior
    cross-fitted over ``n_folds``; ``lm``: byte-level causal-convolution LMs on the texts.
    ``chunk_size``: batch-wise selection (each random chunk keeps its share); None: global."""

    name = "color_filter"

    # labelled (classifier on the labels) | lm (byte-level LMs, texts only)
    mode: Literal["labelled", "lm"] = "labelled"
    n_folds: int = Field(5, ge=2, le=50)  # folds of the cross-fitted prior model (lm mode: 2 is plenty)
    C: float = Field(1.0, gt=0)  # the classifiers' C (labelled mode)
    # the target's total weight in the conditional model (balanced), or a per-item factor
    target_weight: float | Literal["balanced"] = "balanced"
    require_agreement: bool = True  # rank items whose label the conditional model disputes last
    balance: Literal["none", "target"] = "none"  # target: each class keeps the target's share of the budget
    chunk_size: int | None = Field(None, ge=1)  # batch-wise selection over random chunks; None: one global ranking
    lm_width: int = Field(64, ge=8, le=1024)  # lm mode: channels
    lm_layers: int = Field(4, ge=1, le=12)  # lm mode: convolution layers
    lm_max_len: int = Field(256, ge=8, le=4096)  # lm mode: bytes per text
    lm_prior_epochs: int = Field(2, ge=1, le=100)  # lm mode: epochs of the prior LM
    lm_finetune_epochs: int = Field(5, ge=1, le=100)  # lm mode: epochs of the conditional LM's fine-tuning

    @model_validator(mode="after")
    def _check(self) -> "ColorFilterConfig":
        if self.mode == "lm" and self.balance != "none":
            raise ValueError("balance: target needs labels; the lm mode reads only texts.")
        return self

    @property
    def reads(self) -> Literal["features", "texts"]:
        return "texts" if self.mode == "lm" else "features"

    def check_target(self, target_labels: np.ndarray, source: str) -> None:
        missing = int((target_labels < 0).sum())
        if self.mode == "labelled" and missing:
            raise ValueError(f"{missing} of the {len(target_labels)} target items have no label (target.labels="
                             f"{source!r}); labelled CoLoR-Filter needs them all. Label the target, "
                             f"choose another target.labels, or use color_filter.mode: lm.")

    def build(self, *, random_state: int, count: int, n_pool: int, progress: bool = False) -> Selector:
        if self.mode == "lm":
            from thresher.reweighting.select.char_lm import LMColorFilter

            return LMColorFilter(n_folds=self.n_folds, width=self.lm_width, layers=self.lm_layers,
                                 max_len=self.lm_max_len, prior_epochs=self.lm_prior_epochs,
                                 finetune_epochs=self.lm_finetune_epochs, random_state=random_state, progress=progress)
        from sklearn.linear_model import LogisticRegression

        from thresher.reweighting.select.color_filter import ColorFilter

        return ColorFilter(LogisticRegression(C=self.C, max_iter=2000), n_folds=self.n_folds,
                           target_weight=self.target_weight, require_agreement=self.require_agreement,
                           random_state=random_state, progress=progress)

    def choose(self, model: Selector, count: int, y_pool: np.ndarray, y_target: np.ndarray) -> np.ndarray:
        if self.balance == "target":
            shares = np.bincount(y_target, minlength=max(y_pool.max(), y_target.max()) + 1)
            return model.select(count, labels=y_pool, class_shares=shares)
        return model.select(count, batch_size=self.chunk_size)


class GIOConfig(Settings):
    """GIO's k-NN estimate and greedy search. ``stop: budget`` selects exactly the budget;
    ``increase`` stops earlier when the KL rises (the paper's rule), the budget then a cap.
    ``n_clusters``: run on k-means centroids of the pool and expand the chosen ones."""

    name = "gio"
    encoder = "minilm-static"  # GIO's k-NN KL needs dense embeddings

    k: int = Field(5, ge=1, le=100)  # neighbours of the k-NN KL estimate
    n_clusters: int | None = Field(None, ge=2)  # k-means quantisation of the pool; the chosen clusters are expanded
    v_init: Literal["mean", "jump", "prev_opt"] = "jump"  # jump | mean (the package's default) | prev_opt
    stop: Literal["budget", "increase"] = "budget"  # budget | increase (the paper's rule; the budget is then a cap)
    grad_steps: int = Field(50, ge=0, le=10_000)  # gradient steps of each point's search
    lr: float = Field(0.01, gt=0)  # their learning rate
    def build(self, *, random_state: int, count: int, n_pool: int, progress: bool = False) -> Selector:
        from thresher.reweighting.select.gio import GIO

        clustered = self.n_clusters is not None and self.n_clusters < n_pool
        return GIO(k=self.k, max_points=self.n_clusters if clustered else count, grad_steps=self.grad_steps,
                   lr=self.lr, v_init=self.v_init, stop="never" if self.stop == "budget" else "increase",
                   n_clusters=self.n_clusters, random_state=random_state, progress=progress)

    def prepare(self, X_pool: Any, X_target: Any) -> tuple[Any, Any]:
        if hasattr(X_pool, "toarray"):
            raise ValueError("GIO needs dense embeddings: set select.features.encoder to minilm or minilm-static.")
        return np.asarray(X_pool, dtype=np.float64), np.asarray(X_target, dtype=np.float64)

    def figures(self, model: Any, chosen: np.ndarray, X_pool: Any, X_target: Any, *, random_state: int
                ) -> dict[str, Any]:
        """The k-NN KL of the target to the selection, and to a random set of the same size."""
        from thresher.reweighting.select.gio import knn_kl

        X_pool, X_target = self.prepare(X_pool, X_target)
        random = np.random.default_rng(random_state).permutation(len(X_pool))[:len(chosen)]
        return {"selected": knn_kl(X_target, X_pool[chosen], k=self.k) if len(chosen) else float("nan"),
                "random_same_size": knn_kl(X_target, X_pool[random], k=self.k) if len(chosen) else float("nan"),
                "stopped_by": model.stopped_by}


class RandomConfig(Settings):
    """The baseline: a uniformly random subset (no settings)."""

    name = "random"

    def build(self, *, random_state: int, count: int, n_pool: int, progress: bool = False) -> Selector:
        from thresher.reweighting.select.uniform import RandomSelection

        return RandomSelection(random_state=random_state)


SELECTORS: dict[str, type[Settings]] = {cls.name: cls for cls in (ColorFilterConfig, GIOConfig, RandomConfig)}
Method = Literal["color_filter", "gio", "random"]  # the SELECTORS names (tests/test_registries.py checks)
