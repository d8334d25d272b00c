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
from pydantic import field_validator

from thresher.features import FeatureConfig, features_with_outside
from thresher.core.classes import gold_ids
from thresher.reweighting.gold import GoldCheck
from thresher.reweighting.items import labelled_items
from thresher.reweighting.select.registry import ColorFilterConfig, GIOConfig, Method, RandomConfig, Settings
from thresher.reweighting.select.target import TargetConfig, TargetSet, load_target
from thresher.storage.connection import registered, transaction
from thresher.storage.repo import replace_run_rows
from thresher.core.config import StageConfig
from thresher.core.stages import Stage, StageContext, file_state
from thresher.storage.repo import detector_in_use, latest_run

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking

logger = logging.getLogger(__name__)

class SelectConfig(StageConfig):
    """What to select from (the labelled items, optionally of some splits), towards which target,
    by which method, and how many (a count, or a fraction of the pool in (0, 1])."""

    method: Method = "color_filter"  # color_filter | gio | random (see "Data selection")
    budget: int | float = 0.1  # a fraction of the pool in (0, 1], or a count
    target: TargetConfig  # the items to select for: a split, a SQL query or a file
    labels_from: Literal["denoised", "given"] = "denoised"  # set once at the top level
    include_uncovered: bool = False  # also select among items no LF voted on
    # Leave out the items the detect stage flagged as label issues (the export drops them anyway,
    # and CoLoR-Filter's loss differences are heaviest-tailed on wrong labels). None: when a detect
    # run exists (the summary says which); true: a detect run is required; false: never.
    drop_label_issues: bool | None = None
    pool_splits: list[str] | None = None  # None: every split
    features: FeatureConfig | None = None  # None: the method's own (tfidf for CoLoR-Filter, minilm-static for GIO)
    # Each method's settings, under its name (see reweighting/select/registry.py); ``method`` picks one.
    color_filter: ColorFilterConfig = ColorFilterConfig()
    gio: GIOConfig = GIOConfig()  # GIO's settings
    random: RandomConfig = RandomConfig()  # the random baseline (no settings)
    random_state: int = 0  # the seed of every method

    @field_validator("budget")
    @classmethod
    def _positive(cls, value: int | float) -> int | float:
        if value <= 0 or (isinstance(value, float) and value > 1 and not value.is_integer()):
            raise ValueError(f"budget must be a count >= 1 or a fraction in (0, 1]. Got {value!r}.")
        return int(value) if isinstance(value, float) and value > 1 else value

    @property
    def settings(self) -> Settings:
        """The settings of the chosen ``method``."""
        return getattr(self, self.method)

    @property
    def feature_config(self) -> FeatureConfig:
        if self.features is not None:
            return self.features
        return FeatureConfig(encoder=self.settings.encoder)


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
    label_issues_from: str | None = None  # the detect run whose flags were left out (None: none was)
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
    with registered(con, _pool_items=items, _pool_meta=meta):
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
            progress: bool, chunking: Chunking | None = None) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """(chosen pool indices, best first; per-item scores or None; the method's own figures)."""
    settings = config.settings
    labels = pool.column("label").to_numpy().astype(np.int64)
    settings.check_target(target.labels, config.target.labels)
    if settings.reads == "texts":
        X_pool, X_target = pool.column("text").to_pylist(), list(target.texts)
    else:
        X_pool, X_target = settings.prepare(*_features(con, config, pool, target, progress, chunking))
    model = settings.build(random_state=config.random_state, count=count, n_pool=pool.num_rows, progress=progress)
    model.fit(X_pool, labels, X_target, target.labels)
    chosen = settings.choose(model, count, labels, target.labels)
    return chosen, getattr(model, "scores_", None), settings.figures(model, chosen, X_pool, X_target,
                                                                     random_state=config.random_state)


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
    issues = (detect_run, detector) if detect_run is not None and config.drop_label_issues is not False else None
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
    check = GoldCheck(labels, gold_ids(pool.column("gold").to_pylist()))
    datasets = pool.column("dataset").to_pylist()
    pool_counts, chosen_counts = Counter(datasets), Counter(datasets[i] for i in chosen)
    summary = SelectSummary(
        run_id, config.method, config.target.describe(), len(target), n, len(chosen), seconds, n_dropped,
        label_issues_from=issues[0] if issues else None,
        datasets={d: {"pool": pool_counts[d], "selected": chosen_counts.get(d, 0)} for d in sorted(pool_counts)},
        labels={classes[c]: int((labels[chosen] == c).sum()) for c in range(len(classes))},
        gold=_against_gold(check, chosen), kl=kl)
    logger.info("Selected %d of %d items by %s towards %s in %.1f s", len(chosen), n, config.method,
                summary.target, seconds)
    return summary


def _against_gold(check: GoldCheck, chosen: np.ndarray) -> dict[str, float]:
    """Label error rate of the pool and of the selection, where gold labels exist."""
    if not check.has.any():
        return {}
    out = {"pool_error_rate": check.error_rate()}
    if check.has[chosen].any():
        out["selected_error_rate"] = check.error_rate(chosen)
    return out


class SelectStage(Stage):
    """Registry entry of the select stage: its cache also keys on the target file."""

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> SelectSummary:
        config: SelectConfig = context.config
        needs_label_run = config.labels_from == "denoised" or config.target.labels == "denoised"
        context.input_run_id = latest_run(con, "label") if needs_label_run else None
        detect_run = None
        if config.drop_label_issues is not False:
            try:
                detect_run = latest_run(con, "detect")
            except LookupError:
                if config.drop_label_issues:
                    raise LookupError("select.drop_label_issues: true needs a completed detect run: run `thresher "
                                      "detect CONFIG` first, or leave drop_label_issues unset to select without one.")
                logger.info("No detect run: selecting without leaving out label issues")
        detector = detector_in_use(con, detect_run) if detect_run else ""
        return select(con, config, classes=context.classes, run_id=context.run_id, label_run=context.input_run_id,
                      detect_run=detect_run, detector=detector, progress=context.progress, chunking=context.chunking)

    def cache_inputs(self, config: SelectConfig) -> dict[str, Any]:
        return {"target_file": file_state(config.target.file.path) if config.target.file is not None else None}

    def uses_cluster(self, config: SelectConfig) -> bool:
        return config.feature_config.chunked
