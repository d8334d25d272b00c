"""The detect stage: check labels with confident learning, store scores, flags and weights."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import Field, ValidationInfo, field_validator, model_validator

from thresher.core.plugins import PluginRef, fresh, object_name, object_token, spec_files
from thresher.reweighting.detect.base import DetectorResult, checked_result
from thresher.reweighting.detect.sanity import flag_warnings
from thresher.reweighting.detect.registry import DETECTORS, DetectorSettings, PluginSettings, Shared, build_detectors, detector_settings
from thresher.features import FeatureConfig, item_features
from thresher.core.classes import gold_ids
from thresher.reweighting.gold import GoldCheck
from thresher.reweighting.items import label_input, labelled_arrays, labelled_query
from thresher.reweighting.detect.tuning import TuneConfig, Tuned, stratified_sample, tune
from thresher.reweighting.weights import (
    WeightBalance, WeightMethod, balanced, compute_weights, weight_rows,
)
from thresher.storage.connection import registered, transaction
from thresher.storage.arrow_columns import constant_column
from thresher.storage.repo import replace_run_rows
from thresher.core.config import StageConfig
from thresher.core.stages import Stage, StageContext, file_state

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking

logger = logging.getLogger(__name__)


# Flat settings of earlier versions and where they live now.
MOVED = {"filter_by": "confident_learning.filter_by", "small_loss_rule": "small_loss.rule",
         "small_loss_threshold": "small_loss.threshold (and linear_separation.small_loss_threshold, hybrid.threshold)",
         "lsa_mode": "linear_separation.mode (and hybrid.lsa_mode)", "hybrid_rounds": "hybrid.rounds",
         "ensemble_min_votes": "ensemble.min_votes"}


class DetectConfig(StageConfig):
    """Which labels are checked, by which detectors, with what features, and how weights are made.

    Every detector in ``detectors`` (a name, or a mapping of names to their settings; see
    :mod:`thresher.reweighting.detect.registry`) writes its scores and flags to ``noise_scores``; the
    one named by ``use`` (default: the first) drives the weights and what the export leaves out.
    ``n_folds``, ``C`` and ``random_state`` make the out-of-fold probabilities every detector shares.
    """

    labels_from: Literal["denoised", "given"] = "denoised"  # set once at the top level: the labels checked
    include_uncovered: bool = False  # also check items no LF voted on (their label is the prior)
    features: FeatureConfig = FeatureConfig()  # what the out-of-fold classifier sees (see "Features" in the README)
    n_folds: int = Field(5, ge=2, le=50)  # folds of the out-of-fold probabilities every detector shares
    # The logistic regression's C; auto: chosen with TF-IDF min_df among ``tune`` by out-of-fold
    # log-loss on the given labels (never gold), see tuning.py
    C: float | Literal["auto"] = "auto"
    # The logistic regression's solver. newton-cg reaches lbfgs's optimum (same out-of-fold log-loss to
    # 1e-3) 10-30x faster on TF-IDF features here: scipy's L-BFGS-B step costs more than the gradient
    # at 50k features x classes (benchmarks/README.md, "Detect's cost").
    solver: Literal["newton-cg", "lbfgs", "saga"] = "newton-cg"
    tune: TuneConfig = TuneConfig()  # the C (and min_df) candidates of C: auto, and the sample they are scored on
    # Your own scikit-learn classifier for the out-of-fold probabilities, as 'module:attribute' or
    # 'file.py:attribute' (relative to the config file), or from Python the object: an estimator (cloned)
    # or a class or function returning one (called with no arguments). None: logistic regression with C
    # (tuned by C: auto).
    estimator: PluginRef | None = None
    # each detector's settings under its name (a list of names takes the defaults); your own under a name of yours,
    # with object: module:attribute
    detectors: dict[str, Any] = Field(
        default_factory=lambda: {"confident_learning": {}}, min_length=1, validate_default=True,
        json_schema_extra={"propertyNames": {"anyOf": [{"enum": list(DETECTORS)}, {"type": "string"}]}})
    use: str | None = None  # the detector whose flags and scores make the weights and the export's drops (default: the first)
    # flagged_quality: flagged items weigh their label-quality score (the detector in use's), the others 1;
    # label_quality: every item its score (see reweighting/weights.py)
    weight: WeightMethod = "flagged_quality"
    # per_class: the weights are rescaled within each class so that it keeps its share of the total
    # weight (a minority class gets lower scores whatever its labels' accuracy); none: the raw scores
    weight_balance: WeightBalance = "per_class"
    # Flags that fail a sanity check (a whole class flagged, far more flags than estimated noise, a
    # classifier at chance; see reweighting/detect/sanity.py) are reported with a warning and
    # ignore_flags: not used (uniform weights, nothing left out by export.drop_label_issues); warn: used.
    sanity: Literal["ignore_flags", "warn"] = "ignore_flags"
    random_state: int = 0  # the folds' and detectors' seed
    # More checked items than this (with TF-IDF features): the streamed path, hashed TF-IDF, fold models
    # fitted on train_rows items drawn at random, every item scored in chunks on all cores (streamed.py).
    stream_above: int = Field(100_000, ge=0)
    train_rows: int = Field(200_000, ge=1_000)  # streamed path: the idf and fold models are fitted on this many items

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        moved = {key: where for key, where in MOVED.items() if isinstance(data, dict) and key in data}
        if moved:
            raise ValueError("Each detector's settings are nested under its name in 'detectors' now: "
                             + "; ".join(f"{key} -> detectors.{where}" for key, where in moved.items()))
        return data

    @field_validator("detectors", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(set(value)) != len(value):
                raise ValueError(f"detectors lists a detector twice: {list(value)}")
            return {name: {} for name in value}
        return value

    @field_validator("detectors", mode="after")
    @classmethod
    def _settings(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, DetectorSettings]:
        return {name: detector_settings(name, settings, context=info.context) for name, settings in value.items()}

    @field_validator("C")
    @classmethod
    def _positive(cls, value: float | str) -> float | str:
        if value != "auto" and not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"C must be a positive number or 'auto'. Got {value!r}.")
        return value

    @model_validator(mode="after")
    def _check(self) -> "DetectConfig":
        if self.use is not None and self.use not in self.detectors:
            raise ValueError(f"use={self.use!r} is not among detectors {list(self.detectors)}.")
        for name, settings in self.detectors.items():
            if settings.over_others and len(self.detectors) < 3:
                raise ValueError(f"The {name} detector votes over the other detectors: list at least two besides it.")
        return self

    def streams(self, n_items: int) -> bool:
        """Whether ``n_items`` labels are checked on the streamed path."""
        return self.features.encoder == "tfidf" and n_items > self.stream_above

    @property
    def detector_in_use(self) -> str:
        return self.use or next(iter(self.detectors))


@dataclass
class DetectSummary:
    """Counts of the detect stage, and detection quality where gold labels exist."""

    run_id: str
    label_run: str | None
    n_checked: int
    n_issues: int
    gold: dict[str, float] = field(default_factory=dict)
    use: str = "confident_learning"
    detectors: dict[str, dict[str, float]] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)  # what the probabilities were computed on
    classes: dict[str, Any] = field(default_factory=dict)  # checked, unchecked (too few items), absent
    weights: dict[str, Any] = field(default_factory=dict)  # method, balance, each class's share of items and weight
    warnings: list[str] = field(default_factory=list)  # the sanity checks' warnings on the detector in use
    flags_used: bool = True  # false: the flags failed a sanity check and the weights and export ignore them

    def as_dict(self) -> dict[str, Any]:
        return {"label_run": self.label_run, "n_checked": self.n_checked, "n_issues": self.n_issues,
                "gold": self.gold, "use": self.use, "detectors": self.detectors, "features": self.features,
                "classes": self.classes, "weights": self.weights, "warnings": self.warnings,
                "flags_used": self.flags_used}


@dataclass(frozen=True)
class CheckedClasses:
    """Which labels out-of-fold checking can judge: a class needs ``n_folds`` items so that every
    fold's model has seen it. Items of rarer classes are not checked (kept unflagged, quality 1);
    the checked classes are renumbered 0..k-1 for the detectors."""

    names: list[str]
    counts: np.ndarray  # items per class id
    n_folds: int

    @classmethod
    def of(cls, labels: np.ndarray, names: list[str] | None, n_folds: int) -> "CheckedClasses":
        size = max(len(names or []), int(labels.max()) + 1)
        names = list(names or []) + [str(c) for c in range(len(names or []), size)]
        return cls(names, np.bincount(labels, minlength=size), n_folds)

    @property
    def ids(self) -> np.ndarray:
        return np.flatnonzero(self.counts >= self.n_folds)

    def mask(self, labels: np.ndarray) -> np.ndarray:
        """The items whose label is checked."""
        return np.isin(labels, self.ids)

    def renumbered(self, labels: np.ndarray) -> np.ndarray:
        index = np.full(len(self.counts), -1)
        index[self.ids] = np.arange(len(self.ids))
        return index[labels]

    def check(self) -> None:
        if len(self.ids) < 2:
            raise ValueError(
                f"Checking labels out of fold needs at least two classes with n_folds={self.n_folds} items or more. "
                f"Items per class: {self.report()['items']}. Lower n_folds or label more items.")

    def report(self) -> dict[str, Any]:
        return {"checked": [self.names[c] for c in self.ids],
                "unchecked": {self.names[c]: int(n) for c, n in enumerate(self.counts) if 0 < n < self.n_folds},
                "absent": [self.names[c] for c, n in enumerate(self.counts) if n == 0],
                "items": {self.names[c]: int(n) for c, n in enumerate(self.counts)}}


def _widened(result: DetectorResult, checked: np.ndarray) -> DetectorResult:
    """A detector's result on the checked items, spread over all items: the others score 1, unflagged."""
    scores, flags = np.ones(len(checked)), np.zeros(len(checked), dtype=bool)
    scores[checked], flags[checked] = result.scores, result.is_issue
    return DetectorResult(result.name, scores, flags, result.info)


@contextmanager
def sparse_features_hint(who: str, encoder: str) -> Iterator[None]:
    """scikit-learn's error for a dense-only classifier given sparse (TF-IDF) features, said in thresher's terms."""
    try:
        yield
    except TypeError as exc:
        if "Sparse data" not in str(exc):
            raise
        raise TypeError(f"{who}: {exc} The features are sparse ({encoder}); choose a classifier that takes sparse "
                        "input, or dense features (detect.features.encoder: numeric, minilm, minilm-static).") from None


def run_detectors(X, labels: np.ndarray, pred_probs: np.ndarray, config: DetectConfig,
                  estimator) -> dict[str, DetectorResult]:
    """Run the configured detectors, sharing one set of out-of-fold probabilities."""
    import time
    from dataclasses import replace

    shared = Shared(estimator=estimator, n_folds=config.n_folds, random_state=config.random_state)
    results = {}
    for name, detector in build_detectors(config.detectors, shared).items():
        started = time.perf_counter()
        with sparse_features_hint(f"Detector {name!r}", config.features.encoder):
            fitted = detector.fit(X, labels, pred_probs=pred_probs)
        result = checked_result((detector if fitted is None else fitted).result(), len(labels), name)
        results[name] = replace(result, name=name,
                                info={**result.info, "seconds": round(time.perf_counter() - started, 3)})
    return results


def detect(
    con: duckdb.DuckDBPyConnection, config: DetectConfig, *, run_id: str, label_run: str | None,
    progress: bool = False, chunking: Chunking | None = None, classes: list[str] | None = None,
) -> DetectSummary:
    """Score every checked label with the configured detectors; write ``noise_scores`` and ``weights``.

    Items of a class with fewer than ``n_folds`` items are not checked (see :class:`CheckedClasses`):
    they are written unflagged with score 1, and the summary's ``classes`` names them."""
    query, params = labelled_query(config.labels_from, label_run, include_uncovered=config.include_uncovered,
                                   columns="i.text")
    n_items = con.sql(f"SELECT count(*) FROM ({query})", params=params).fetchall()[0][0]
    streamed = config.streams(n_items)
    items, item_ids, all_labels = labelled_arrays(con, config.labels_from, label_run, text=not streamed,
                                                  include_uncovered=config.include_uncovered, purpose="check")
    has_text = (_has_text(con, config, label_run, item_ids) if config.features.encoder != "numeric"
                else np.ones(len(item_ids), dtype=bool))  # numeric columns need no text
    if not has_text.any():
        return _without_text(con, config, items, item_ids, all_labels, run_id=run_id, label_run=label_run,
                             classes=classes)
    kinds = CheckedClasses.of(all_labels[has_text], classes, config.n_folds)
    kinds.check()
    checked = kinds.mask(all_labels) & has_text
    labels = kinds.renumbered(all_labels[checked])
    from sklearn.linear_model import LogisticRegression

    texts = None if streamed else items.column("text").filter(checked).to_pylist()
    X = None
    tuned: Tuned | None = None
    if config.estimator is not None:
        if streamed:
            raise ValueError(f"detect.estimator {object_name(config.estimator)} needs every item's features in memory; "
                             f"{n_items:,} items are more than stream_above={config.stream_above:,}: raise it.")
        estimator = user_estimator(config.estimator)
    elif config.C == "auto":
        X = None if streamed or config.features.encoder == "tfidf" else item_features(
            con, config.features, item_ids.filter(checked), texts, progress=progress, chunking=chunking)
        tuned = _tune(con, config, labels, item_ids.filter(checked), texts, X, progress)
        config = config.model_copy(update={"C": tuned.C})
        if tuned.min_df is not None:
            config = config.model_copy(update={"features": config.features.model_copy(update={
                "tfidf": config.features.tfidf.model_copy(update={"min_df": tuned.min_df})})})
    if config.estimator is None:
        assert not isinstance(config.C, str)
        estimator = LogisticRegression(C=config.C, solver=config.solver, max_iter=2000)
    if streamed:
        needs_features = [name for name, settings in config.detectors.items() if not settings.streams]
        if needs_features:
            raise ValueError(f"Detectors {needs_features} need every item's features in memory; {n_items:,} items are "
                             f"more than stream_above={config.stream_above:,}. Use "
                             f"{' and '.join(n for n, s in DETECTORS.items() if s.streams and not s.over_others)}, "
                             "or raise stream_above.")
        from thresher.reweighting.detect.streamed import streamed_out_of_fold_proba

        pred_probs = streamed_out_of_fold_proba(
            con, query, params, labels, rows=checked, features=config.features.tfidf, estimator=estimator, n_folds=config.n_folds,
            random_state=config.random_state, train_rows=config.train_rows, progress=progress,
            map_chunks=None if chunking is None else chunking.map_chunks,
            chunk_rows=100_000 if chunking is None else chunking.rows,
            workdir=None if chunking is None else chunking.directory)
        X = np.empty((len(labels), 0))  # the detectors that run here use the probabilities only
        features = {"kind": "hashed tf-idf, streamed", "train_rows": min(config.train_rows, len(labels))}
    else:
        if X is None:
            X = item_features(con, config.features, item_ids.filter(checked), texts, progress=progress, chunking=chunking)
        if tuned is not None and tuned.pred_probs is not None and tuned.rows == len(labels):
            pred_probs = tuned.pred_probs  # tuned on every checked item, with these folds: already computed
        else:
            from thresher.reweighting.detect.confident_learning import out_of_fold_proba

            with sparse_features_hint(f"detect.estimator {object_name(config.estimator)}", config.features.encoder):
                pred_probs = out_of_fold_proba(estimator, X, labels, n_folds=config.n_folds,
                                               random_state=config.random_state, progress=progress)
        features = {"kind": config.features.encoder, "train_rows": len(labels)}
    features.update(C=None if config.estimator is not None else config.C,
                    min_df=config.features.tfidf.min_df if config.features.encoder == "tfidf" else None,
                    tuned=None if tuned is None else tuned.as_dict(),
                    estimator=object_token(config.estimator) if config.estimator is not None else "logistic regression")
    found = run_detectors(X, labels, pred_probs, config, estimator)
    checked_names = [kinds.names[k] for k in kinds.ids]
    sanity = {name: flag_warnings(labels, r.is_issue, pred_probs, checked_names) for name, r in found.items()}
    results = {name: _widened(r, checked) for name, r in found.items()}
    result = results[config.detector_in_use]
    warnings = sanity[config.detector_in_use][0]
    flags_used = not (warnings and config.sanity == "ignore_flags")
    labels = all_labels
    confidence = items.column("confidence").to_numpy().astype(float)
    method = config.weight if flags_used or config.weight == "confidence" else "uniform"  # no untrusted scores
    raw = compute_weights(method, label_quality=result.scores, confidence=confidence, flagged=result.is_issue)
    weights, weight_info = balanced(raw, labels, config.weight_balance, kinds.names)

    n = len(item_ids)
    with transaction(con):
        replace_run_rows(con, "noise_scores", run_id, pa.concat_tables([pa.table({
            "run_id": constant_column(run_id, n), "item_id": item_ids, "detector": constant_column(r.name, n),
            "score": r.scores.astype(float), "is_issue": r.is_issue.astype(bool),
        }) for r in results.values()]))
        replace_run_rows(con, "weights", run_id, weight_rows(run_id, "detect", item_ids, method, weights,
                                                             flagged=result.is_issue), stage="detect")

    check = GoldCheck(labels, gold_ids(items.column("gold")))
    quality: dict[str, float] = {}
    if check.has.any():
        flags = check.flags(result.is_issue, result.scores)
        kept = check.has & ~result.is_issue
        quality = {
            "n_with_gold": int(check.has.sum()), "label_error_rate": check.error_rate(),
            "issue_precision": flags["precision"], "issue_recall": flags["recall"],
            "accuracy_kept": 1 - check.error_rate(kept) if kept.any() else float("nan"),
        }
    answers = reviewed_answers(con, item_ids)
    per_detector = {name: {**r.summary(), **(check.flags(r.is_issue, r.scores) if check.has.any() else {}),
                           "sanity": {**sanity[name][1], "warnings": sanity[name][0]},
                           **({"reviewed": flags_on_answers(r.is_issue, labels, answers)} if (answers >= 0).any() else {})}
                    for name, r in results.items()}
    weight_info = {"method": method, **weight_info}
    report = kinds.report()
    if not has_text.all():
        report["no_text"] = int((~has_text).sum())  # label-only items: not checked, kept unflagged
        logger.warning("Not checked (no text to compute features from): %d items; kept unflagged.", report["no_text"])
    summary = DetectSummary(run_id, label_run, n, int(result.is_issue.sum()), quality, config.detector_in_use,
                            per_detector, features, report, weight_info, warnings, flags_used)
    for warning in warnings:
        logger.warning("Detector %s %s%s", config.detector_in_use, warning,
                       "" if flags_used else "; its flags are not used (detect.sanity: warn uses them)")
    if summary.classes["unchecked"]:
        logger.warning("Not checked (fewer than n_folds=%d items): %s; kept unflagged.", config.n_folds,
                       summary.classes["unchecked"])
    logger.info("Checked %d labels: %d issues; %s", n, summary.n_issues, quality)
    return summary


def reviewed_answers(con: duckdb.DuckDBPyConnection, item_ids: pa.Array) -> np.ndarray:
    """Each item's answer from a person (the ``reviewed`` view; -1: none), in ``item_ids`` order."""
    import pyarrow.compute as pc

    answered = con.sql("SELECT item_id, label FROM reviewed").to_arrow_table()
    out = np.full(len(item_ids), -1)
    if answered.num_rows:
        where = pc.index_in(item_ids, value_set=answered.column("item_id").combine_chunks()).to_numpy(zero_copy_only=False)
        found = ~np.isnan(where.astype(float))
        out[found] = answered.column("label").to_numpy()[where[found].astype(int)]
    return out


def flags_on_answers(flags: np.ndarray, labels: np.ndarray, answers: np.ndarray) -> dict[str, Any]:
    """A detector's flags judged by a person's answers: of the answered items it flagged, how many were
    right (the answer differs from the label), and of the answered wrong labels, how many it flagged."""
    answered = answers >= 0
    wrong = answered & (answers != labels)
    flagged = answered & flags
    return {"answered": int(answered.sum()), "flagged": int(flagged.sum()), "right": int((flagged & wrong).sum()),
            "precision": float((flagged & wrong).sum() / flagged.sum()) if flagged.any() else None,
            "recall": float((flagged & wrong).sum() / wrong.sum()) if wrong.any() else None}


def user_estimator(spec: Any) -> Any:
    """A fresh copy of the scikit-learn classifier ``spec`` names (``module:attribute`` or ``file.py:attribute``)
    or is: an estimator is cloned; a class or function is called with no arguments."""
    return fresh(spec, what="detect.estimator", required=("fit", "predict_proba"))


def _has_text(con: duckdb.DuckDBPyConnection, config: DetectConfig, label_run: str | None, item_ids: pa.Array) -> np.ndarray:
    """Which of ``item_ids`` have a text that is not blank (label-only sources give items an empty text)."""
    import pyarrow.compute as pc

    query, params = labelled_query(config.labels_from, label_run, include_uncovered=config.include_uncovered,
                                   columns="i.item_id, i.text")
    blank = con.sql(f"SELECT item_id FROM ({query}) WHERE trim(text) = ''", params=params).fetch_arrow_table()
    if blank.num_rows == 0:
        return np.ones(len(item_ids), dtype=bool)
    return ~pc.is_in(item_ids, value_set=blank.column("item_id").combine_chunks()).to_numpy(zero_copy_only=False)


NO_TEXT = ("no item has text (a label-only source, columns.text: null): the detectors need text features, so none "
           "ran; every label is kept unflagged")


def _without_text(con: duckdb.DuckDBPyConnection, config: DetectConfig, items: pa.Table, item_ids: pa.Array,
                  labels: np.ndarray, *, run_id: str, label_run: str | None, classes: list[str] | None) -> DetectSummary:
    """The detect run of label-only items: nothing to check, so no flags; the weights are the label
    model's confidence when that is the weight method (it needs no text), else 1."""
    n = len(item_ids)
    confidence = items.column("confidence").to_numpy().astype(float)
    method = "confidence" if config.weight == "confidence" else "uniform"
    ones, none = np.ones(n), np.zeros(n, dtype=bool)
    weights, weight_info = balanced(compute_weights(method, label_quality=ones, confidence=confidence), labels,
                                    config.weight_balance, CheckedClasses.of(labels, classes, config.n_folds).names)
    with transaction(con):
        replace_run_rows(con, "noise_scores", run_id, pa.table({
            "run_id": constant_column(run_id, n), "item_id": item_ids, "detector": constant_column(config.detector_in_use, n),
            "score": ones, "is_issue": none}))
        replace_run_rows(con, "weights", run_id, weight_rows(run_id, "detect", item_ids, method, weights, flagged=none),
                         stage="detect")
    logger.warning("Detect: %s.", NO_TEXT)
    return DetectSummary(run_id, label_run, n, 0, {}, config.detector_in_use, {}, {"kind": None, "skipped": NO_TEXT},
                         {"no_text": n}, {"method": method, **weight_info}, [NO_TEXT], False)


def _tune(con: duckdb.DuckDBPyConnection, config: DetectConfig, labels: np.ndarray, item_ids: pa.Array,
          texts: list[str] | None, X: Any, progress: bool = False) -> Tuned:
    """Choose C (and min_df, for TF-IDF features whose min_df the config leaves unset) on a stratified
    sample of the checked items; on the streamed path the sample's texts are read here and its TF-IDF
    computed in memory."""
    sample = stratified_sample(labels, config.tune.rows, config.n_folds, config.random_state)
    tfidf = config.features.encoder == "tfidf"
    min_dfs: list[int | None] = [None]
    if tfidf:
        min_dfs = [config.features.tfidf.min_df] if "min_df" in config.features.tfidf.model_fields_set \
            else list(config.tune.min_df)
        if texts is None:
            with registered(con, _tune_ids=pa.table({"item_id": item_ids.take(pa.array(sample))})):
                texts_of = [r[0] for r in con.sql("SELECT text FROM items WHERE item_id IN (SELECT item_id FROM _tune_ids) "
                                                  "ORDER BY item_id").fetchall()]
        else:
            texts_of = [texts[i] for i in sample]

    def features(min_df: int | None) -> Any:
        if not tfidf:
            return X[sample]
        from thresher.features import tfidf_features

        return tfidf_features(texts_of, config.features.tfidf.model_copy(update={"min_df": min_df}))

    tuned = tune(features, labels[sample], Cs=list(config.tune.C), min_dfs=min_dfs, n_folds=config.n_folds,
                 random_state=config.random_state, solver=config.solver, progress=progress)
    if len(min_dfs) == 1:
        tuned.min_df = None
    logger.info("Detect classifier: C=%s, min_df=%s chosen by out-of-fold log-loss on %d given labels",
                tuned.C, tuned.min_df, tuned.rows)
    return tuned


class DetectStage(Stage):
    """Registry entry of the detect stage: checks the labels of the latest label run (or the given ones)."""

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> DetectSummary:
        config: DetectConfig = context.config
        context.input_run_id = label_input(con, config.labels_from)
        return detect(con, config, run_id=context.run_id, label_run=context.input_run_id,
                      progress=context.progress, chunking=context.chunking, classes=context.classes)

    def cache_inputs(self, config: DetectConfig) -> dict[str, Any]:
        """The files that your own estimator and detectors come from (editing one reruns detect)."""
        plugins = [s.object for s in config.detectors.values() if isinstance(s, PluginSettings)]
        return {"files": [file_state(path) for path in spec_files(config.estimator, *plugins)]}

    def uses_cluster(self, config: DetectConfig) -> bool:
        return config.features.chunked or config.features.encoder == "tfidf"  # embeddings, or the streamed path
