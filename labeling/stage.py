"""The labeling stage: apply LFs to every item, summarise them, denoise the votes, store it all."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from snorkel.utils import probs_to_preds

from thresher.labeling.analysis import lf_summary
from thresher.labeling.apply import validate_sql_lfs
from thresher.core.chunking import Chunking
from thresher.core.classes import gold_ids
from thresher.labeling.apply.incremental import cached_votes, max_item_seq, update_vote_cache
from thresher.labeling.matrix import VOTES_SCHEMA
from thresher.labeling.config import LabelingConfig
from thresher.labeling.lf.base import ABSTAIN
from thresher.labeling.llm.apply import PromptRun, apply_prompted_lfs
from thresher.labeling.llm.factory import build_backend
from thresher.labeling.llm.backend import Backend, Budget
from thresher.labeling.llm.prompt import PromptedLF
from thresher.labeling.matrix import vote_matrix
from thresher.labeling.model import denoise, entropy, fit_sample, majority_proba, score, vote_patterns
from thresher.core.stages import Stage, StageContext
from thresher.storage.connection import transaction
from thresher.storage.repo import constant_column, replace_run_rows
from thresher.storage.schema import release_buffers
from thresher.storage.state import latest_summary

logger = logging.getLogger(__name__)


@dataclass
class LabelSummary:
    """What the labeling stage did: coverage, per-split accuracy where gold exists, LF table."""

    run_id: str
    n_items: int
    n_lfs: int
    n_votes: int
    coverage: float
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    lfs: pd.DataFrame | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    selection: list[dict[str, Any]] = field(default_factory=list)
    evaluated: dict[str, int] = field(default_factory=dict)  # items each LF ran on (0: cache only)
    llm: dict[str, Any] | None = None  # prompted LFs: prompts cached / sent / failed, per-LF answers

    def lf_records(self) -> list[dict[str, Any]]:
        """The LF summary as JSON-able dicts (missing values as None)."""
        if self.lfs is None:
            return []
        frame = self.lfs.reset_index(names="lf").astype(object)
        return frame.where(pd.notna(frame), None).to_dict(orient="records")

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items, "n_lfs": self.n_lfs, "n_votes": self.n_votes,
            "coverage": self.coverage, "accuracy": self.accuracy, "faults": self.faults,
            "model": self.model, "selection": self.selection, "evaluated": self.evaluated, "llm": self.llm,
        }


def _source_votes(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return con.sql("SELECT item_id, lf, vote FROM source_votes ORDER BY item_id, lf").to_arrow_table().cast(VOTES_SCHEMA)


def _decided_accuracy(gold: np.ndarray, predicted: np.ndarray) -> float | None:
    """Accuracy over the items with a prediction (not ``ABSTAIN``); None when there are none."""
    decided = predicted != ABSTAIN
    return score(gold[decided], predicted[decided], "accuracy") if decided.any() else None


def label_version(config: LabelingConfig) -> str:
    """Fingerprint of the config plus every LF's own version (Python LFs hash their source)."""
    lfs: list = [*config.build_lfs(), *config.build_prompted_lfs()]
    parts = [config.fingerprint()] + [f"{lf.name}={lf.version()}" for lf in lfs]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def prompted_lf_row(lf: PromptedLF, backend: Backend) -> tuple[str, str, str]:
    """(kind, version, definition) of a prompted LF as asked of ``backend``: both decide its votes."""
    definition = json.dumps({"backend": backend.identity(), "lf": json.loads(lf.definition())}, sort_keys=True)
    return "prompt", hashlib.sha256(definition.encode()).hexdigest()[:12], definition


@dataclass
class _Votes:
    """Every vote of a label run: the configured LFs' (cache), the prompted LFs', the imported ones."""

    table: pa.Table
    names: list[str]
    lf_rows: dict[str, tuple[str, str, str]]  # lf -> (kind, version, definition)
    evaluated: dict[str, int]
    faults: Any
    prompt_run: PromptRun | None


def _collect_votes(con: duckdb.DuckDBPyConnection, config: LabelingConfig, *, run_id: str, through_seq: int,
                   progress: bool, chunking: Chunking | None) -> _Votes:
    lfs = config.build_lfs()
    validate_sql_lfs(con, [lf for lf in lfs if lf.sql() is not None])
    evaluated, faults = update_vote_cache(con, lfs, through_seq=through_seq, max_fault_rate=config.max_fault_rate,
                                          n_jobs=config.n_jobs, progress=progress, chunking=chunking)
    parts = [cached_votes(con, lfs, through_seq=through_seq)]
    names = [lf.name for lf in lfs]
    lf_rows = {lf.name: (lf.kind, lf.version(), lf.definition()) for lf in lfs}
    prompted = config.build_prompted_lfs()
    prompt_run: PromptRun | None = None
    if prompted:
        backend = build_backend(config.llm, chunking=chunking)
        backend.check()
        budget = Budget(config.llm.budget.max_calls, config.llm.budget.max_tokens)
        prompt_run = apply_prompted_lfs(con, prompted, backend, through_seq=through_seq, run_id=run_id,
                                        budget=budget, progress=progress, chunking=chunking)
        parts.append(prompt_run.votes)
        names += [lf.name for lf in prompted]
        lf_rows.update({lf.name: prompted_lf_row(lf, backend) for lf in prompted})
    if config.source_votes:
        imported = _source_votes(con)
        imported_names = sorted(set(imported.column("lf").to_pylist()))
        clash = sorted(set(imported_names) & set(names))
        if clash:
            raise ValueError(f"LF names {clash} are used both by configured LFs and by votes imported with the data.")
        if not imported_names:
            raise ValueError("source_votes is set but no votes were imported with the data (only WRENCH files carry them).")
        parts.append(imported)
        names += imported_names
        lf_rows.update({name: ("imported", f"imported:{name}", "votes imported with the data") for name in imported_names})
    return _Votes(pa.concat_tables(parts), names, lf_rows, evaluated, faults, prompt_run)


def _fit(config: LabelingConfig, L: np.ndarray, splits: np.ndarray, gold: np.ndarray) -> Any:
    """The label model fitted on the configured splits (and selected on a dev split), applied to every item."""
    fit_mask = np.ones(len(L), dtype=bool)
    present = sorted({s for s in splits if s is not None})
    if config.model.fit_splits is not None:
        fit_mask = np.isin(splits, config.model.fit_splits)
        if not fit_mask.any():
            raise ValueError(f"fit_splits {config.model.fit_splits} match no item. Splits present: {present}")
    dev = None
    if config.model.select_on is not None:
        dev_mask = (splits == config.model.select_on) & (gold >= 0)
        if not dev_mask.any():
            raise ValueError(
                f"select_on={config.model.select_on!r} has no items with gold labels. Splits present: {present}"
            )
        dev = (L[dev_mask], gold[dev_mask])
    rows = np.flatnonzero(fit_mask)
    sample = fit_sample(len(rows), config.model.fit_rows, config.model.seed)
    return denoise(L[rows if sample is None else rows[sample]], L, cardinality=len(config.classes),
                   config=config.model, dev=dev)


def _accuracy(L: np.ndarray, probs: np.ndarray, splits: np.ndarray, gold: np.ndarray) -> dict[str, dict[str, float]]:
    """Per split with gold labels: the denoised labels' and majority vote's accuracy (and F1 when binary)."""
    K = probs.shape[1]
    predicted, covered = probs.argmax(axis=1), (L != ABSTAIN).any(axis=1)
    mv_probs = majority_proba(L, cardinality=K)
    mv_predicted = mv_probs.argmax(axis=1)
    # Snorkel's LabelModel.score() default: ties (and uncovered items with a uniform prior) abstain
    # and are left out, so its accuracy is over the items the model decides.
    # probs_to_preds loops in Python: it runs once per vote pattern (an item's probabilities follow from its votes).
    first, inverse = vote_patterns(L)
    decided = probs_to_preds(probs[first], tie_break_policy="abstain")[inverse]
    mv_decided = probs_to_preds(mv_probs[first], tie_break_policy="abstain")[inverse]
    accuracy: dict[str, dict[str, float]] = {}
    for split in sorted({s for s in splits if s is not None}):
        mask = (splits == split) & (gold >= 0)
        if mask.any():
            accuracy[split] = {
                "denoised": score(gold[mask], predicted[mask], "accuracy"),
                "majority_vote": score(gold[mask], mv_predicted[mask], "accuracy"),
                "denoised_decided": _decided_accuracy(gold[mask], decided[mask]),
                "majority_vote_decided": _decided_accuracy(gold[mask], mv_decided[mask]),
                "decided": float((decided[mask] != ABSTAIN).mean()),
                "coverage": float(covered[splits == split].mean()),
                "n": int(mask.sum()),
            }
            if K == 2:
                accuracy[split]["denoised_f1"] = score(gold[mask], predicted[mask], "f1")
                accuracy[split]["majority_vote_f1"] = score(gold[mask], mv_predicted[mask], "f1")
    return accuracy


def _splits(column: pa.ChunkedArray) -> np.ndarray:
    """The split of every item as an object array whose strings are shared (one per split, not per row)."""
    encoded = column.combine_chunks().dictionary_encode()
    names = np.array(encoded.dictionary.to_pylist() + [None], dtype=object)
    return names[encoded.indices.fill_null(len(encoded.dictionary)).to_numpy()]


def _nullable(values: pd.Series, kind: type, arrow: pa.DataType) -> pa.Array:
    return pa.array([None if pd.isna(v) else kind(v) for v in values], arrow)


LABEL_ROWS = 500_000  # labels rows built and inserted at once


def _label_batches(run_id: str, item_ids: pa.Array, probs: np.ndarray, covered: np.ndarray) -> Iterator[pa.Table]:
    """The ``labels`` rows in batches of ``LABEL_ROWS``: their float64 columns are built one batch at a time."""
    for start in range(0, len(item_ids), LABEL_ROWS):
        part = probs[start:start + LABEL_ROWS]
        yield pa.table({
            "run_id": constant_column(run_id, len(part)), "item_id": item_ids.slice(start, LABEL_ROWS),
            "label": pa.array(part.argmax(axis=1), pa.int32()),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(part.astype(float).ravel()),
                                                       probs.shape[1]).cast(pa.list_(pa.float64())),
            "confidence": part.max(axis=1).astype(float), "entropy": entropy(part).astype(float),
            "covered": covered[start:start + LABEL_ROWS],
        })


def _write(con: duckdb.DuckDBPyConnection, run_id: str, votes: _Votes, through_seq: int, summary_df: pd.DataFrame,
           item_ids: pa.Array, probs: np.ndarray, covered: np.ndarray) -> None:
    """The run's ``lfs``, ``lf_summary``, ``labels`` (and ``prompt_votes``) rows, in one transaction."""
    names, rows = votes.names, votes.lf_rows
    with transaction(con):
        replace_run_rows(con, "lfs", run_id, pa.table({
            "run_id": [run_id] * len(names), "lf": names,
            "kind": [rows[n][0] for n in names], "version": [rows[n][1] for n in names],
            "definition": [rows[n][2] for n in names],
            "through_seq": pa.array([through_seq] * len(names), pa.int64()),
        }))
        replace_run_rows(con, "lf_summary", run_id, pa.table({
            "run_id": [run_id] * len(names), "lf": names,
            "polarity": pa.array(summary_df["polarity"].tolist(), pa.list_(pa.int32())),
            "coverage": summary_df["coverage"].astype(float), "overlaps": summary_df["overlaps"].astype(float),
            "conflicts": summary_df["conflicts"].astype(float),
            "correct": _nullable(summary_df["correct"], int, pa.int64()),
            "incorrect": _nullable(summary_df["incorrect"], int, pa.int64()),
            "emp_accuracy": _nullable(summary_df["emp_accuracy"], float, pa.float64()),
            "learned_accuracy": _nullable(summary_df["learned_accuracy"], float, pa.float64()),
        }))
        replace_run_rows(con, "labels", run_id, _label_batches(run_id, item_ids, probs, covered))
        if votes.prompt_run is not None:
            prompted = votes.prompt_run.votes
            replace_run_rows(con, "prompt_votes", run_id, prompted.add_column(
                0, "run_id", pa.array([run_id] * prompted.num_rows, pa.string())))


def label(
    con: duckdb.DuckDBPyConnection, config: LabelingConfig, *, run_id: str, progress: bool = False,
    chunking: Chunking | None = None,
) -> LabelSummary:
    """Apply the LFs, fit the label model and write ``lfs``, ``votes``, ``lf_summary``, ``labels``.

    With ``chunking`` the LFs are applied, and prompted LFs answered (or, on the embedded backend,
    encoded), chunk by chunk elsewhere (see :mod:`thresher.labeling.apply.chunked`, :mod:`thresher.labeling.llm.chunked`).
    """
    through_seq = max_item_seq(con)
    votes = _collect_votes(con, config, run_id=run_id, through_seq=through_seq, progress=progress, chunking=chunking)
    items = con.sql("SELECT item_id, split, gold FROM items WHERE item_seq <= $through ORDER BY item_id",
                    params={"through": through_seq}).to_arrow_table()
    if items.num_rows == 0:
        raise ValueError("There are no items to label. Run `thresher ingest CONFIG` first.")
    release_buffers(con)  # what DuckDB kept while it sorted the votes; the label model's arrays need it
    item_ids = items.column("item_id").combine_chunks()
    splits = _splits(items.column("split"))
    gold = gold_ids(items.column("gold"))
    L = vote_matrix(votes.table, item_ids, votes.names)
    result = _fit(config, L, splits, gold)
    covered = (L != ABSTAIN).any(axis=1)
    accuracy = _accuracy(L, result.probs, splits, gold)
    summary_df = lf_summary(L, votes.names, gold)
    summary_df["learned_accuracy"] = np.nan if result.learned_accuracy is None else result.learned_accuracy
    _write(con, run_id, votes, through_seq, summary_df, item_ids, result.probs, covered)
    summary = LabelSummary(
        run_id=run_id, n_items=len(item_ids), n_lfs=len(votes.names), n_votes=votes.table.num_rows,
        coverage=float(covered.mean()), accuracy=accuracy, lfs=summary_df, faults=votes.faults.as_dict(),
        model=result.params, selection=result.selection, evaluated=votes.evaluated,
        llm=None if votes.prompt_run is None else votes.prompt_run.as_dict(),
    )
    logger.info("Labeled %d items with %d LFs; coverage %.3f; accuracy %s",
                summary.n_items, summary.n_lfs, summary.coverage, accuracy)
    return summary


class LabelStage(Stage):
    """Registry entry of the label stage: its cache keys on every LF's version, and a run that left
    prompts failed or unsent (budget) is not reused, so they are asked again."""

    # What a task-level retry can fix: the network, not a refused key or a missing model (LLMBackendError).
    transient = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> LabelSummary:
        return label(con, context.config, run_id=context.run_id, progress=context.progress, chunking=context.chunking)

    def version(self, config: LabelingConfig) -> str:
        return label_version(config)

    def must_rerun(self, con: duckdb.DuckDBPyConnection) -> bool:
        llm = (latest_summary(con, "label") or {}).get("llm")
        return bool(llm) and (llm.get("failed", 0) > 0 or llm.get("budget_stopped") is not None)

    def uses_cluster(self, config: LabelingConfig) -> bool:
        return True

    def retries(self, config: LabelingConfig) -> int:
        return 1 if config.llm is not None and config.llm.backend == "openai" else 0

    def extra(self, con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
        from thresher.labeling.analysis import stored_lf_summary

        return {"lf_summary": stored_lf_summary(con, run_id)}
