"""The detect stage: check labels with confident learning, store scores, flags and weights."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import Field
from sklearn.linear_model import LogisticRegression

from reweighting.detect.confident_learning import ConfidentLearning, FilterBy
from reweighting.features import TfidfConfig, tfidf_features
from reweighting.weights import WeightMethod, compute_weights
from storage.repo import replace_run_rows, transaction
from thresher.stageconfig import StageConfig

logger = logging.getLogger(__name__)


class DetectConfig(StageConfig):
    """Which labels are checked, with what features and classifier, and how weights are made."""

    labels_from: Literal["denoised", "given"] = "denoised"
    include_uncovered: bool = False  # also check items no LF voted on (their label is the prior)
    features: TfidfConfig = TfidfConfig()
    n_folds: int = Field(5, ge=2, le=50)
    C: float = Field(1.0, gt=0)
    filter_by: FilterBy = "prune_by_noise_rate"
    weight: WeightMethod = "label_quality"
    random_state: int = 0


@dataclass
class DetectSummary:
    """Counts of the detect stage, and detection quality where gold labels exist."""

    run_id: str
    label_run: str | None
    n_checked: int
    n_issues: int
    gold: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"label_run": self.label_run, "n_checked": self.n_checked, "n_issues": self.n_issues, "gold": self.gold}


def _checked_items(con: duckdb.DuckDBPyConnection, config: DetectConfig, label_run: str | None) -> pa.Table:
    if config.labels_from == "given":
        query = ("SELECT i.item_id, i.text, i.label, 1.0::DOUBLE AS confidence, i.gold FROM items i "
                 "WHERE i.label IS NOT NULL ORDER BY i.item_id")
        return con.sql(query).to_arrow_table()
    if label_run is None:
        raise ValueError("labels_from='denoised' needs a label run.")
    covered = "" if config.include_uncovered else "AND l.covered"
    query = (f"SELECT i.item_id, i.text, l.label, l.confidence, i.gold FROM items i JOIN labels l "
             f"ON l.item_id = i.item_id AND l.run_id = $run {covered} ORDER BY i.item_id")
    return con.sql(query, params={"run": label_run}).to_arrow_table()


def detect(
    con: duckdb.DuckDBPyConnection, config: DetectConfig, *, run_id: str, label_run: str | None,
    progress: bool = False,
) -> DetectSummary:
    """Score every checked item's label with cleanlab and write ``noise_scores`` and ``weights``."""
    items = _checked_items(con, config, label_run)
    if items.num_rows == 0:
        raise ValueError(f"No labelled items to check (labels_from={config.labels_from!r}).")
    item_ids = items.column("item_id").to_pylist()
    labels = items.column("label").to_numpy().astype(np.int64)
    X = tfidf_features(items.column("text").to_pylist(), config.features)
    detector = ConfidentLearning(
        estimator=LogisticRegression(C=config.C, max_iter=2000), n_folds=config.n_folds,
        filter_by=config.filter_by, random_state=config.random_state, progress=progress,
    ).fit(X, labels)
    result = detector.result()
    confidence = items.column("confidence").to_numpy().astype(float)
    weights = compute_weights(config.weight, label_quality=result.scores, confidence=confidence)

    n = len(item_ids)
    with transaction(con):
        replace_run_rows(con, "noise_scores", run_id, pa.table({
            "run_id": [run_id] * n, "item_id": item_ids, "detector": [result.name] * n,
            "score": result.scores.astype(float), "is_issue": result.is_issue.astype(bool),
        }))
        replace_run_rows(con, "weights", run_id, pa.table({
            "run_id": [run_id] * n, "item_id": item_ids, "method": [config.weight] * n, "weight": weights,
        }))

    gold = np.array([-1 if g is None else g for g in items.column("gold").to_pylist()])
    quality: dict[str, float] = {}
    has_gold = gold >= 0
    if has_gold.any():
        wrong = (labels != gold) & has_gold
        flagged = result.is_issue & has_gold
        quality = {
            "n_with_gold": int(has_gold.sum()),
            "label_error_rate": float(wrong.sum() / has_gold.sum()),
            "issue_precision": float((flagged & wrong).sum() / flagged.sum()) if flagged.any() else float("nan"),
            "issue_recall": float((flagged & wrong).sum() / wrong.sum()) if wrong.any() else float("nan"),
            "accuracy_kept": float((labels == gold)[has_gold & ~result.is_issue].mean()) if (has_gold & ~result.is_issue).any() else float("nan"),
        }
    summary = DetectSummary(run_id, label_run, n, int(result.is_issue.sum()), quality)
    logger.info("Checked %d labels: %d issues; %s", n, summary.n_issues, quality)
    return summary
