"""The reweight stage: train a classifier on the labelled items while learning per-item weights.

STORM learns the weights with a meta-learned rescaler; the loss rules derive them from each
batch's losses; ``uniform`` is the baseline. The final weights, their flag (< 0.5) and the
trajectory over epochs go to ``weights`` (stage ``reweight``), which the export can use.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
from pydantic import Field

from thresher.features import FeatureConfig, item_features
from thresher.core.classes import gold_ids
from thresher.core.device import DeviceName, torch_threads
from thresher.reweighting.gold import GoldCheck
from thresher.reweighting.items import label_input, labelled_arrays
from thresher.reweighting.rescale.base import Optimizer, Strategy
from thresher.reweighting.weights import WeightBalance, balanced, weight_rows
from thresher.storage.connection import transaction
from thresher.storage.repo import replace_run_rows
from thresher.core.config import StageConfig
from thresher.core.stages import Stage, StageContext

if TYPE_CHECKING:  # heavy (torch, numba): imported where they run
    from thresher.core.chunking import Chunking
    from thresher.reweighting.rescale import Reweighter

logger = logging.getLogger(__name__)


class ReweightConfig(StageConfig):
    """Which labels, which features, and how the weights are learned (defaults: the STORM paper's
    TF-IDF setting: linear model, batch 32, Adam lr 5e-2, 10 epochs, G = 3 passes, dropout 0.1)."""

    # storm | linupper | quadratic | extremes | uniform (see "Learned weights" in the README)
    strategy: Strategy = "storm"
    labels_from: Literal["denoised", "given"] = "denoised"  # set once at the top level
    include_uncovered: bool = False  # also weigh items no LF voted on
    features: FeatureConfig = FeatureConfig()  # as detect.features
    hidden: int = Field(0, ge=0)  # 0: linear model; > 0: one hidden ReLU layer of this width
    lr: float = Field(5e-2, gt=0)  # the model's learning rate (the paper's TF-IDF setting: Adam 5e-2)
    batch_size: int = Field(32, ge=1)  # items per training batch
    epochs: int = Field(10, ge=1, le=1000)  # training epochs
    optimizer: Optimizer = "adam_reset"  # restart Adam each step, as STORM's reference code (see README)
    dropout: float = Field(0.1, ge=0, lt=1)  # on the inputs of the G-1 extra forward passes
    forward_passes: int = Field(3, ge=1, le=20)  # G: forward passes per batch whose statistics the rescaler reads
    rescaler_lr: float = Field(1e-2, gt=0)  # the rescaler's learning rate
    rescaler_features: Literal["all", "loss"] = "all"  # all (the 19 statistics) | loss (loss and agreement only)
    class_separation: bool = True  # one rescaler and one memory per class
    categories: bool = True  # memory statistics per agree/disagree category
    meta_loss_rescaling: bool = True  # the meta batch's loss is rescaled too
    simulate_only: bool = False  # learn the weights, train the model unweighted
    temperature: float = Field(1.0, gt=0)  # loss rules: softmax temperature r
    burn_in_steps: int = Field(0, ge=0)    # loss rules: uniform weights for the first steps
    device: DeviceName = "auto"            # auto: a GPU when torch sees one; cpu; cuda; cuda:N
    precision: Literal["float32", "bfloat16"] = "float32"  # bfloat16: the classifier's passes under autocast
    random_state: int = 0  # the seed of batches, dropout and initialisation
    # per_class: the learned weights are rescaled within each class so that it keeps its share of the
    # total weight (STORM's raw weights crushed YouTube's smaller class to a mean of 0.06); none: as learned.
    weight_balance: WeightBalance = "per_class"

    def estimator(self, progress: bool = False) -> Reweighter:
        from thresher.reweighting.rescale import Reweighter

        params = self.model_dump(exclude={"labels_from", "include_uncovered", "features", "weight_balance"})
        return Reweighter(**params, progress=progress)


@dataclass
class ReweightSummary:
    """What the reweight stage did, and how the weights relate to gold labels where they exist."""

    run_id: str
    label_run: str | None
    strategy: str
    n_items: int
    n_flagged: int
    mean_weight: float
    seconds: float
    epochs: list[dict[str, float]] = field(default_factory=list)
    gold: dict[str, float] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)  # balance, each class's share of items and weight

    def as_dict(self) -> dict[str, Any]:
        return {"label_run": self.label_run, "strategy": self.strategy, "n_items": self.n_items,
                "n_flagged": self.n_flagged, "mean_weight": self.mean_weight, "seconds": self.seconds,
                "epochs": self.epochs, "gold": self.gold, "weights": self.weights}


def _against_gold(weights: np.ndarray, flagged: np.ndarray, check: GoldCheck) -> dict[str, float]:
    has, wrong = check.has, check.wrong
    if not has.any():
        return {}
    out = {"n_with_gold": int(has.sum()), "label_error_rate": check.error_rate(),
           "mean_weight_wrong": float(weights[wrong].mean()) if wrong.any() else float("nan"),
           "mean_weight_right": float(weights[has & ~wrong].mean()) if (has & ~wrong).any() else float("nan")}
    if 0 < wrong.sum() < has.sum():
        found = check.flags(flagged, weights)
        out.update(auroc=found["auroc"], flag_precision=found["precision"], flag_recall=found["recall"])
    return out


def fit_weights(config: ReweightConfig, X: Any, labels: np.ndarray, threads: int) -> Reweighter:
    """The weight learner of ``config`` fitted on ``X`` and ``labels`` on a cluster worker, with the
    caller's number of torch threads: sums split over other thread counts round differently."""
    with torch_threads(threads):
        return config.estimator().fit(X, labels)


def reweight(
    con: duckdb.DuckDBPyConnection, config: ReweightConfig, *, run_id: str, label_run: str | None,
    progress: bool = False, chunking: Chunking | None = None, classes: list[str] | None = None,
) -> ReweightSummary:
    """Learn a weight for every labelled item; write them to ``weights`` (stage ``reweight``), each class
    keeping its share of the total weight under ``weight_balance: per_class``. ``classes`` names the
    class ids in the summary (default: the ids)."""
    items, item_ids, labels = labelled_arrays(con, config.labels_from, label_run,
                                              include_uncovered=config.include_uncovered, purpose="weigh")
    X = item_features(con, config.features, item_ids, items.column("text").to_pylist(), progress=progress,
                      chunking=chunking)
    started = time.perf_counter()
    if chunking is None:
        model = config.estimator(progress=progress).fit(X, labels)
    else:  # sequential training (one model, step by step) cannot be split: it runs whole on a worker
        import torch

        model = chunking.map_chunks(fit_weights, [(config, X, labels, torch.get_num_threads())])[0]
    seconds = time.perf_counter() - started
    names = classes or [str(c) for c in range(int(labels.max()) + 1)]
    weights, weight_info = balanced(model.weights_, labels, config.weight_balance, names)
    with transaction(con):  # flagged: the learned weight was below 0.5, whatever the balancing made of it
        replace_run_rows(con, "weights", run_id, weight_rows(run_id, "reweight", item_ids, config.strategy, weights,
                                                             model.weight_history_, flagged=model.flagged_),
                         stage="reweight")
    check = GoldCheck(labels, gold_ids(items.column("gold").to_pylist()))
    summary = ReweightSummary(run_id, label_run, config.strategy, len(item_ids), int(model.flagged_.sum()),
                              float(weights.mean()), seconds, model.epoch_log_,
                              _against_gold(model.weights_, model.flagged_, check), weight_info)
    logger.info("Weighed %d items with %s in %.1f s: %d below 0.5; %s", summary.n_items, config.strategy,
                seconds, summary.n_flagged, summary.gold)
    return summary


class ReweightStage(Stage):
    """Registry entry of the reweight stage: trains on the labels of the latest label run (or the given ones)."""

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> ReweightSummary:
        config: ReweightConfig = context.config
        context.input_run_id = label_input(con, config.labels_from)
        return reweight(con, config, run_id=context.run_id, label_run=context.input_run_id,
                        progress=context.progress, chunking=context.chunking, classes=context.classes)

    def uses_cluster(self, config: ReweightConfig) -> bool:
        return True  # the training runs on a worker, and chunked features are encoded there
