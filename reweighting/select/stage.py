"""The select stage: choose the training subset of the labelled items that serves a target set.

CoLoR-Filter keeps the items whose loss a target-conditioned model lowers most (labelled:
a classifier on the item's label; ``lm``: byte-level language models on the text only); GIO
picks items whose embeddings bring the selection's distribution close to the target's; random
is the baseline. Every pool item gets a row in ``selections`` (score, selected, rank); the
export keeps only the selected ones.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from thresher.features import FeatureConfig, features_with_outside
from thresher.reweighting.items import labelled_items
from thresher.reweighting.select.target import TargetConfig, TargetSet, load_target
from thresher.storage.repo import replace_run_rows, transaction
from thresher.core.config import StageConfig
from thresher.core.stages import Stage, StageContext, file_state
from thresher.storage.repo import detector_in_use, latest_run

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking

logger = logging.getLogger(__name__)

Method = Literal["color_filter", "gio", "random"]


class ColorFilterConfig(StageConfig):
    """CoLoR-Filter's models. ``labelled``: logistic regression on the features, the prior
    cross-fitted over ``n_folds``; ``lm``: byte-level causal-convolution LMs on the texts.
    ``chunk_size``: batch-wise selection (each random chunk keeps its share); None: global."""

    mode: Literal["labelled", "lm"] = "labelled"
    n_folds: int = Field(5, ge=2, le=50)
    C: float = Field(1.0, gt=0)
    target_weight: float | Literal["balanced"] = "balanced"
    require_agreement: bool = True  # rank items whose label the conditional model disputes last
    balance: Literal["none", "target"] = "none"  # target: each class keeps the target's share of the budget
    chunk_size: int | None = Field(None, ge=1)
    lm_width: int = Field(64, ge=8, le=1024)
    lm_layers: int = Field(4, ge=1, le=12)
    lm_max_len: int = Field(256, ge=8, le=4096)
    lm_prior_epochs: int = Field(2, ge=1, le=100)
    lm_finetune_epochs: int = Field(5, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> "ColorFilterConfig":
        if self.mode == "lm" and self.balance != "none":
            raise ValueError("balance: target needs labels; the lm mode reads only texts.")
        return self


class GIOConfig(StageConfig):
    """GIO's k-NN estimate and greedy search. ``stop: budget`` selects exactly the budget;
    ``increase`` stops earlier when the KL rises (the paper's rule), the budget then a cap.
    ``n_clusters``: run on k-means centroids of the pool and expand the chosen ones."""

    k: int = Field(5, ge=1, le=100)
    n_clusters: int | None = Field(None, ge=2)
    v_init: Literal["mean", "jump", "prev_opt"] = "jump"
    stop: Literal["budget", "increase"] = "budget"
    grad_steps: int = Field(50, ge=0, le=10_000)
    lr: float = Field(0.01, gt=0)


class SelectConfig(StageConfig):
    """What to select from (the labelled items, optionally of some splits), towards which target,
    by which method, and how many (a count, or a fraction of the pool in (0, 1])."""

    method: Method = "color_filter"
    budget: int | float = 0.1
    target: TargetConfig
    labels_from: Literal["denoised", "given"] = "denoised"
    include_uncovered: bool = False
    # Leave out the items the detect stage flagged as label issues (the export drops them anyway,
    # and CoLoR-Filter's loss differences are heaviest-tailed on wrong labels).
    drop_label_issues: bool = True
    pool_splits: list[str] | None = None  # None: every split
    features: FeatureConfig | None = None  # None: tfidf for CoLoR-Filter, minilm-static for GIO
    color_filter: ColorFilterConfig = ColorFilterConfig()
    gio: GIOConfig = GIOConfig()
    random_state: int = 0

    @field_validator("budget")
    @classmethod
    def _positive(cls, value: int | float) -> int | float:
        if value <= 0 or (isinstance(value, float) and value > 1 and not value.is_integer()):
            raise ValueError(f"budget must be a count >= 1 or a fraction in (0, 1]. Got {value!r}.")
        return int(value) if isinstance(value, float) and value > 1 else value

    @property
    def feature_config(self) -> FeatureConfig:
        if self.features is not None:
            return self.features
        return FeatureConfig(encoder="minilm-static" if self.method == "gio" else "tfidf")


@dataclass
class SelectSummary:
    """What the select stage chose, and what the choice is made of."""

    run_id: str
    method: str
    target: str
    n_target: int
    n_pool: int
    n_selected: int
    seconds: float
    n_label_issues_left_out: int = 0
    datasets: dict[str, dict[str, int]] = field(default_factory=dict)  # {dataset: {pool, selected}}
    labels: dict[str, int] = field(default_factory=dict)  # label distribution of the selection
    gold: dict[str, float] = field(default_factory=dict)
    kl: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "run_id"}


def _pool(con: duckdb.DuckDBPyConnection, config: SelectConfig, label_run: str | None, target: TargetSet,
          issues: tuple[str, str] | None) -> tuple[pa.Table, int]:
    """The pool, and how many items were left out as label issues."""
    items = labelled_items(con, config.labels_from, label_run, include_uncovered=config.include_uncovered)
    meta = con.sql("SELECT item_id, dataset, split FROM items").to_arrow_table()
    con.register("_pool_items", items)
    con.register("_pool_meta", meta)
    try:
        where = ["TRUE" if config.pool_splits is None else "list_contains($splits, m.split)"]
        params: dict[str, Any] = {} if config.pool_splits is None else {"splits": list(config.pool_splits)}
        if issues is not None:
            where.append("p.item_id NOT IN (SELECT item_id FROM noise_scores WHERE run_id = $detect_run "
                         "AND detector = $detector AND is_issue)")
            params.update(detect_run=issues[0], detector=issues[1])
        pool = con.sql(f"SELECT p.*, m.dataset FROM _pool_items p JOIN _pool_meta m USING (item_id) "
                       f"WHERE {' AND '.join(where)} ORDER BY p.item_id", params=params).to_arrow_table()
        dropped = con.sql(f"SELECT count(*) FROM _pool_items p JOIN _pool_meta m USING (item_id) WHERE {where[0]}",
                          params={k: v for k, v in params.items() if k == "splits"}).fetchall()[0][0] - pool.num_rows
    finally:
        con.unregister("_pool_items")
        con.unregister("_pool_meta")
    if target.item_ids is not None:
        inside = set(target.item_ids)
        pool = pool.filter(pa.array([i not in inside for i in pool.column("item_id").to_pylist()]))
    if pool.num_rows == 0:
        raise ValueError("The selection pool is empty: no labelled item outside the target"
                         + (f" in splits {config.pool_splits}." if config.pool_splits else "."))
    return pool, dropped


def _features(con, config: SelectConfig, pool: pa.Table, target: TargetSet, progress: bool,
              chunking: Chunking | None = None):
    ids = pool.column("item_id").to_pylist() + (target.item_ids or [])
    texts = pool.column("text").to_pylist() + (target.texts if target.item_ids is not None else [])
    outside = [] if target.item_ids is not None else target.texts
    inside, outer = features_with_outside(con, config.feature_config, ids, texts, outside, progress=progress,
                                          chunking=chunking)
    n = pool.num_rows
    return inside[:n], (inside[n:] if target.item_ids is not None else outer)


def _choose(con, config: SelectConfig, pool: pa.Table, target: TargetSet, count: int,
            progress: bool, chunking: Chunking | None = None) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
    """(chosen pool indices, best first; per-item scores or None; KL figures for GIO)."""
    from sklearn.linear_model import LogisticRegression

    from thresher.reweighting.select.char_lm import LMColorFilter
    from thresher.reweighting.select.color_filter import ColorFilter
    from thresher.reweighting.select.gio import GIO, knn_kl

    n = pool.num_rows
    cf = config.color_filter
    if config.method == "random":
        return np.random.default_rng(config.random_state).permutation(n)[:count], None, {}
    if config.method == "color_filter" and cf.mode == "lm":
        model = LMColorFilter(n_folds=cf.n_folds, width=cf.lm_width, layers=cf.lm_layers, max_len=cf.lm_max_len,
                              prior_epochs=cf.lm_prior_epochs, finetune_epochs=cf.lm_finetune_epochs,
                              random_state=config.random_state, progress=progress)
        model.fit(pool.column("text").to_pylist(), target.texts)
        return model.select(count, batch_size=cf.chunk_size), model.scores_, {}
    X_pool, X_target = _features(con, config, pool, target, progress, chunking)
    if config.method == "color_filter":
        missing = int((target.labels < 0).sum())
        if missing:
            raise ValueError(f"{missing} of the {len(target)} target items have no label (target.labels="
                             f"{config.target.labels!r}); labelled CoLoR-Filter needs them all. Label the target, "
                             f"choose another target.labels, or use color_filter.mode: lm.")
        model = ColorFilter(LogisticRegression(C=cf.C, max_iter=2000), n_folds=cf.n_folds, target_weight=cf.target_weight,
                            require_agreement=cf.require_agreement, random_state=config.random_state, progress=progress)
        labels = pool.column("label").to_numpy().astype(np.int64)
        model.fit(X_pool, labels, X_target, target.labels)
        shares = np.bincount(target.labels, minlength=max(labels.max(), target.labels.max()) + 1) if cf.balance == "target" else None
        return model.select(count, batch_size=cf.chunk_size, labels=labels, class_shares=shares), model.scores_, {}
    g = config.gio
    if hasattr(X_pool, "toarray"):
        raise ValueError("GIO needs dense embeddings: set select.features.encoder to minilm or minilm-static.")
    X_pool, X_target = np.asarray(X_pool, dtype=np.float64), np.asarray(X_target, dtype=np.float64)
    clustered = g.n_clusters is not None and g.n_clusters < n
    model = GIO(k=g.k, max_points=g.n_clusters if clustered else count, grad_steps=g.grad_steps, lr=g.lr,
                v_init=g.v_init, stop="never" if g.stop == "budget" else "increase", n_clusters=g.n_clusters,
                random_state=config.random_state, progress=progress).fit(X_target, X_pool)
    chosen = model.selected_[:count]
    rng = np.random.default_rng(config.random_state)
    random = rng.permutation(n)[: len(chosen)]
    kl = {"selected": knn_kl(X_target, X_pool[chosen], k=g.k) if len(chosen) else float("nan"),
          "random_same_size": knn_kl(X_target, X_pool[random], k=g.k) if len(chosen) else float("nan"),
          "stopped_by": model.stopped_by}
    return chosen, None, kl


def select(
    con: duckdb.DuckDBPyConnection, config: SelectConfig, *, classes: list[str], run_id: str,
    label_run: str | None, detect_run: str | None = None, detector: str = "confident_learning",
    progress: bool = False, chunking: Chunking | None = None,
) -> SelectSummary:
    """Choose ``config.budget`` pool items towards the target; write every pool item to ``selections``.

    With ``detect_run`` (and ``config.drop_label_issues``) the items ``detector`` flagged in that
    run are not candidates.
    """
    target = load_target(con, config.target, classes=classes, label_run=label_run)
    issues = (detect_run, detector) if detect_run is not None and config.drop_label_issues else None
    pool, n_dropped = _pool(con, config, label_run, target, issues)
    n = pool.num_rows
    from thresher.reweighting.select.color_filter import budget_count

    count = budget_count(config.budget, n)
    if len(target) >= n and config.method == "color_filter":
        raise ValueError(f"The target set ({len(target)} items) must be smaller than the pool ({n} items).")
    started = time.perf_counter()
    chosen, scores, kl = _choose(con, config, pool, target, count, progress, chunking)
    seconds = time.perf_counter() - started
    rank = np.full(n, -1)
    rank[chosen] = np.arange(1, len(chosen) + 1)
    item_ids = pool.column("item_id").to_pylist()
    rows = pa.table({
        "run_id": pa.array([run_id] * n, pa.string()), "item_id": pa.array(item_ids, pa.string()),
        "method": pa.array([config.method] * n, pa.string()),
        "score": pa.array(scores if scores is not None else [None] * n, pa.float64()),
        "selected": pa.array(rank > 0), "rank": pa.array(np.where(rank > 0, rank, None).tolist(), pa.int32()),
    })
    with transaction(con):
        replace_run_rows(con, "selections", run_id, rows)

    labels = pool.column("label").to_numpy().astype(np.int64)
    gold = np.array([-1 if g is None else g for g in pool.column("gold").to_pylist()])
    datasets = pool.column("dataset").to_pylist()
    pool_counts, chosen_counts = Counter(datasets), Counter(datasets[i] for i in chosen)
    summary = SelectSummary(
        run_id, config.method, config.target.describe(), len(target), n, len(chosen), seconds, n_dropped,
        datasets={d: {"pool": pool_counts[d], "selected": chosen_counts.get(d, 0)} for d in sorted(pool_counts)},
        labels={classes[c]: int((labels[chosen] == c).sum()) for c in range(len(classes))},
        gold=_against_gold(labels, gold, chosen), kl=kl)
    logger.info("Selected %d of %d items by %s towards %s in %.1f s", len(chosen), n, config.method,
                summary.target, seconds)
    return summary


def _against_gold(labels: np.ndarray, gold: np.ndarray, chosen: np.ndarray) -> dict[str, float]:
    """Label error rate of the pool and of the selection, where gold labels exist."""
    has = gold >= 0
    if not has.any():
        return {}
    out = {"pool_error_rate": float((labels[has] != gold[has]).mean())}
    sel = chosen[has[chosen]]
    if len(sel):
        out["selected_error_rate"] = float((labels[sel] != gold[sel]).mean())
    return out


class SelectStage(Stage):
    """Registry entry of the select stage: its cache also keys on the target file."""

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> SelectSummary:
        config: SelectConfig = context.config
        needs_label_run = config.labels_from == "denoised" or config.target.labels == "denoised"
        context.input_run_id = latest_run(con, "label") if needs_label_run else None
        detect_run = latest_run(con, "detect") if config.drop_label_issues else None
        detector = detector_in_use(con, detect_run) if detect_run else ""
        return select(con, config, classes=context.classes, run_id=context.run_id, label_run=context.input_run_id,
                      detect_run=detect_run, detector=detector, progress=context.progress, chunking=context.chunking)

    def cache_inputs(self, config: SelectConfig) -> dict[str, Any]:
        return {"target_file": file_state(config.target.file.path) if config.target.file is not None else None}

    def uses_cluster(self, config: SelectConfig) -> bool:
        return config.feature_config.chunked
