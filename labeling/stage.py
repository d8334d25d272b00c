"""The labeling stage: apply LFs to every item, summarise them, denoise the votes, store it all."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from thresher.labeling.analysis import LFSummaryTally
from thresher.labeling.apply import validate_sql_lfs
from thresher.core.chunking import Chunking
from thresher.core.classes import gold_ids
from thresher.core.plugins import spec_files
from thresher.labeling.apply.incremental import max_item_seq, update_vote_cache
from thresher.labeling.config import LabelingConfig
from thresher.labeling.lf.base import ABSTAIN
from thresher.labeling.llm.apply import PromptRun, apply_prompted_lfs
from thresher.labeling.llm.factory import build_backend
from thresher.labeling.llm.backend import Backend, Budget
from thresher.labeling.llm.prompt import PromptedLF
from thresher.labeling.model import Denoiser, entropy, fit_denoiser, fit_sample, majority_proba, score
from thresher.labeling.ties import hard_labels, snorkel_tie_hash
from thresher.core.stages import Stage, StageContext
from thresher.storage.connection import registered, transaction
from thresher.storage.arrow_columns import constant_column
from thresher.storage.repo import replace_run_rows
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
    tied: int = 0  # covered items whose top classes tie (left undecided when tie_break is "abstain")
    tie_break: str = "abstain"
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    lfs: pd.DataFrame | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    selection: list[dict[str, Any]] = field(default_factory=list)
    evaluated: dict[str, int] = field(default_factory=dict)  # items each LF ran on (0: cache only)
    llm: dict[str, Any] | None = None  # prompted LFs: prompts cached / sent / failed, per-LF answers
    classes: list[str] = field(default_factory=list)  # the names of the label ids (polarity, labels)
    counted_votes: int = 0  # votes read as per-item counts (labeling.vote_counts)
    reviews: dict[str, Any] = field(default_factory=dict)  # answered items, their hash, how many chose the model

    def lf_records(self) -> list[dict[str, Any]]:
        """The LF summary as JSON-able dicts (missing values as None)."""
        if self.lfs is None:
            return []
        frame = self.lfs.reset_index(names="lf").astype(object)
        return frame.where(pd.notna(frame), None).to_dict(orient="records")

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items, "n_lfs": self.n_lfs, "n_votes": self.n_votes,
            "coverage": self.coverage, "tied": self.tied, "tie_break": self.tie_break,
            "accuracy": self.accuracy, "faults": self.faults,
            "model": self.model, "selection": self.selection, "evaluated": self.evaluated, "llm": self.llm,
            "classes": self.classes, **({"counted_votes": self.counted_votes} if self.counted_votes else {}),
            "reviews": self.reviews,
        }


def _decided_accuracy(gold: np.ndarray, predicted: np.ndarray) -> float | None:
    """Accuracy over the items with a prediction (not ``ABSTAIN``); None when there are none."""
    decided = predicted != ABSTAIN
    return score(gold[decided], predicted[decided], "accuracy") if decided.any() else None


def label_version(config: LabelingConfig) -> str:
    """Fingerprint of the config plus every LF's own version (Python LFs hash their source)."""
    lfs: list = [*config.build_lfs(), *config.build_prompted_lfs()]
    parts = [config.fingerprint()] + [f"{lf.name}={lf.version()}" for lf in lfs]
    parts += [f"{path}={hashlib.sha256(Path(path).read_bytes()).hexdigest()}" for path in spec_files(config.model.model)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def prompted_lf_row(lf: PromptedLF, backend: Backend) -> tuple[str, str, str]:
    """(kind, version, definition) of a prompted LF as asked of ``backend``: both decide its votes."""
    definition = json.dumps({"backend": backend.identity(), "lf": json.loads(lf.definition())}, sort_keys=True)
    return "prompt", hashlib.sha256(definition.encode()).hexdigest()[:12], definition


RUN_VOTES = "_label_run_votes"  # temporary: every vote of the label run, (item_id, col, vote)
LABEL_ROWS_TABLE = "_label_rows"  # temporary: one row per item, its votes as lists, numbered in item_id order


@dataclass
class _Votes:
    """What the LFs of a label run are: the configured ones (cache), the prompted ones, the imported
    ones, in the column order of L. Their votes are in the temporary table ``RUN_VOTES``."""

    names: list[str]
    lf_rows: dict[str, tuple[str, str, str]]  # lf -> (kind, version, definition)
    evaluated: dict[str, int]
    faults: Any
    prompt_run: PromptRun | None


def _add_votes(con: duckdb.DuckDBPyConnection, votes: duckdb.DuckDBPyRelation, names: list[str], first_col: int) -> None:
    """Append ``votes`` (item_id, lf, vote) to ``RUN_VOTES``, the LFs ``names`` numbered from ``first_col``."""
    columns = pa.table({"lf": pa.array(names, pa.string()),
                        "col": pa.array(range(first_col, first_col + len(names)), pa.int16())})
    with registered(con, _run_lf_cols=columns):
        votes.query("_run_lf_votes", f"INSERT INTO {RUN_VOTES} SELECT v.item_id, c.col, v.vote "
                                     "FROM _run_lf_votes v JOIN _run_lf_cols c USING (lf)")


def _collect_votes(con: duckdb.DuckDBPyConnection, config: LabelingConfig, *, run_id: str, through_seq: int,
                   progress: bool, chunking: Chunking | None) -> _Votes:
    lfs = config.build_lfs()
    validate_sql_lfs(con, [lf for lf in lfs if lf.sql() is not None])
    evaluated, faults = update_vote_cache(con, lfs, through_seq=through_seq, max_fault_rate=config.max_fault_rate,
                                          n_jobs=config.n_jobs, progress=progress, chunking=chunking)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {RUN_VOTES} (item_id VARCHAR, col SMALLINT, vote INTEGER)")
    names = [lf.name for lf in lfs]
    versions = pa.table({"version": [lf.version() for lf in lfs], "lf": names})
    with registered(con, _run_lf_versions=versions):
        _add_votes(con, con.sql("SELECT v.item_id, n.lf, v.vote FROM lf_votes v JOIN _run_lf_versions n USING (version)"),
                   names, 0)
    lf_rows = {lf.name: (lf.kind, lf.version(), lf.definition()) for lf in lfs}
    prompted = config.build_prompted_lfs()
    prompt_run: PromptRun | None = None
    if prompted:
        backend = build_backend(config.llm, chunking=chunking)
        backend.check()
        budget = Budget(config.llm.budget.max_calls, config.llm.budget.max_tokens)
        prompt_run = apply_prompted_lfs(con, prompted, backend, through_seq=through_seq, run_id=run_id,
                                        budget=budget, progress=progress, chunking=chunking)
        _add_votes(con, con.from_arrow(prompt_run.votes), [lf.name for lf in prompted], len(names))
        names += [lf.name for lf in prompted]
        lf_rows.update({lf.name: prompted_lf_row(lf, backend) for lf in prompted})
    if config.source_votes:
        imported_names = [row[0] for row in con.sql("SELECT DISTINCT lf FROM source_votes ORDER BY lf").fetchall()]
        clash = sorted(set(imported_names) & set(names))
        if clash:
            raise ValueError(f"LF names {clash} are used both by configured LFs and by votes imported with the data.")
        if not imported_names:
            raise ValueError("source_votes is set but no votes were imported with the data (only WRENCH files carry them).")
        _add_votes(con, con.sql("SELECT item_id, lf, vote FROM source_votes"), imported_names, len(names))
        names += imported_names
        lf_rows.update({name: ("imported", f"imported:{name}", "votes imported with the data") for name in imported_names})
    return _Votes(names, lf_rows, evaluated, faults, prompt_run)


class _LabelRows:
    """The items of a label run (those up to ``through_seq``) with their votes, in a temporary table
    numbered ``rn`` = 0, 1, ... in item_id order; any set of them is read back as a dense L."""

    def __init__(self, con: duckdb.DuckDBPyConnection, n_lfs: int, through_seq: int, *, counts: bool = False) -> None:
        self._con, self.n_lfs = con, n_lfs
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {LABEL_ROWS_TABLE} AS "
            "SELECT (row_number() OVER (ORDER BY i.item_id) - 1)::BIGINT AS rn, i.item_id, hash(i.item_id) AS tie_hash, "
            "i.split, i.gold, v.cols, v.votes, " + ("c.counts " if counts else "NULL::INTEGER[] AS counts ") +
            f"FROM items i LEFT JOIN (SELECT item_id, list(col ORDER BY col) AS cols, list(vote ORDER BY col) AS votes "
            f"FROM {RUN_VOTES} GROUP BY item_id) v USING (item_id) "
            + ("LEFT JOIN vote_counts c USING (item_id) " if counts else "")
            + "WHERE i.item_seq <= $through ORDER BY i.item_id", {"through": through_seq})
        self.n_items, self.n_votes, top = con.sql(
            f"SELECT count(*), coalesce(sum(len(cols)), 0), max(list_max(votes)) FROM {LABEL_ROWS_TABLE}").fetchall()[0]
        self._dtype = np.int8 if top is None or top < np.iinfo(np.int8).max else np.int32

    def where(self, condition: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The rows matching a SQL condition, in rn order."""
        return self._con.sql(f"SELECT * FROM {LABEL_ROWS_TABLE} WHERE {condition} ORDER BY rn",
                             params=params or {}).to_arrow_table()

    def reviewed(self) -> pa.Table:
        """The rows a person answered (the ``reviewed`` view), in rn order, their answer as ``answer``."""
        return self._con.sql(f"SELECT r.*, v.label AS answer FROM {LABEL_ROWS_TABLE} r JOIN reviewed v USING (item_id) "
                             "ORDER BY r.rn").to_arrow_table()

    def count(self, condition: str, params: dict[str, Any] | None = None) -> int:
        return int(self._con.sql(f"SELECT count(*) FROM {LABEL_ROWS_TABLE} WHERE {condition}",
                                 params=params or {}).fetchall()[0][0])

    def splits(self) -> list[str]:
        return [row[0] for row in self._con.sql(
            f"SELECT DISTINCT split FROM {LABEL_ROWS_TABLE} WHERE split IS NOT NULL ORDER BY split").fetchall()]

    def sample(self, condition: str, params: dict[str, Any], positions: np.ndarray) -> pa.Table:
        """The rows at ``positions`` (0-based, in rn order) among those matching ``condition``."""
        picked = pa.table({"pos": pa.array(positions, pa.int64())})
        with registered(self._con, _fit_positions=picked):
            return self.where(f"rn IN (SELECT rn FROM (SELECT rn, row_number() OVER (ORDER BY rn) - 1 AS pos "
                              f"FROM {LABEL_ROWS_TABLE} WHERE {condition}) JOIN _fit_positions USING (pos))", params)

    def batches(self, size: int) -> Iterator[pa.Table]:
        for start in range(0, self.n_items, size):
            yield self.where("rn >= $lo AND rn < $hi", {"lo": start, "hi": start + size})

    def matrix(self, rows: pa.Table) -> np.ndarray:
        """Dense L (-1 = abstain) of ``rows``, one column per LF."""
        import pyarrow.compute as pc

        cols, votes = rows.column("cols").combine_chunks(), rows.column("votes").combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(cols), 0).to_numpy()
        L = np.full((rows.num_rows, self.n_lfs), ABSTAIN, dtype=self._dtype)
        L[np.repeat(np.arange(rows.num_rows), lengths), pc.list_flatten(cols).to_numpy()] = pc.list_flatten(votes).to_numpy()
        return L

    def counts(self, rows: pa.Table, cardinality: int) -> np.ndarray | None:
        """The per-item vote counts of ``rows`` (items x classes; 0 where an item has none), or None
        when the run reads no counts."""
        column = rows.column("counts").combine_chunks()
        if column.null_count == len(column):
            return None
        dense = np.zeros((rows.num_rows, cardinality), dtype=np.int64)
        present = ~column.is_null().to_numpy(zero_copy_only=False)
        dense[present] = np.array(column.filter(column.is_valid()).to_pylist(), dtype=np.int64).reshape(-1, cardinality)
        return dense

    def drop(self) -> None:
        self._con.execute(f"DROP TABLE IF EXISTS {LABEL_ROWS_TABLE}")


def _fit(config: LabelingConfig, rows: _LabelRows) -> tuple[Denoiser, int]:
    """The label model fitted on the configured splits (at most ``fit_rows`` of them, drawn at random)
    and selected on a dev split, or with ``model: auto`` on the items a person answered (``use_reviews``);
    how many answers chose it. Only those rows' votes are read, so the fit's memory is bounded."""
    present = rows.splits()
    fit_where, params = "true", {}
    if config.model.fit_splits is not None:
        fit_where, params = "list_contains($fit_splits, split)", {"fit_splits": list(config.model.fit_splits)}
    n_fit = rows.count(fit_where, params)
    if n_fit == 0:
        raise ValueError(f"fit_splits {config.model.fit_splits} match no item. Splits present: {present}")
    dev = None
    if config.model.select_on is not None:
        dev_rows = rows.where("split = $dev AND gold IS NOT NULL", {"dev": config.model.select_on})
        if dev_rows.num_rows == 0:
            raise ValueError(
                f"select_on={config.model.select_on!r} has no items with gold labels. Splits present: {present}"
            )
        dev = (rows.matrix(dev_rows), gold_ids(dev_rows.column("gold")), dev_rows.column("tie_hash").to_numpy())
    answers = 0
    if dev is None and config.model.model == "auto" and config.model.use_reviews:
        reviewed = rows.reviewed()
        if reviewed.num_rows >= config.model.min_reviews:
            answers = reviewed.num_rows
            dev = (rows.matrix(reviewed), reviewed.column("answer").to_numpy().astype(np.int64),
                   reviewed.column("tie_hash").to_numpy())
            logger.info("model: auto chooses on %d reviewed items' answers", answers)
    sample = fit_sample(n_fit, config.model.fit_rows, config.model.seed)
    if sample is None:
        fit_rows = rows.where(fit_where, params)
    else:
        fit_rows = rows.sample(fit_where, params, sample)
    return fit_denoiser(rows.matrix(fit_rows), cardinality=len(config.classes), config=config.model, dev=dev,
                        n_items=rows.count("true")), answers


def reviews_state(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """How many items a person answered and a hash of the answers: a label run that chose on them is
    redone when they change (:meth:`LabelStage.must_rerun`)."""
    n, digest = con.execute("SELECT count(*), coalesce(sum(hash(item_id, label)), 0) FROM reviewed").fetchall()[0]
    return {"answered": int(n), "hash": str(digest)}


class _AccuracyTally:
    """Per split with gold labels: the denoised labels' and majority vote's accuracy (and F1 when
    binary), from batches of items; only the gold items' predictions are kept (a byte each)."""

    def __init__(self, cardinality: int) -> None:
        self.K = cardinality
        self._gold: dict[str, list[np.ndarray]] = {}
        self._items: dict[str, int] = {}
        self._covered: dict[str, int] = {}

    def add(self, L: np.ndarray, probs: np.ndarray, splits: np.ndarray, gold: np.ndarray, tie_hash: np.ndarray,
            covered: np.ndarray | None = None) -> None:
        """``covered``: given when vote counts cover items too (the probabilities are then majority vote's)."""
        counted = covered is not None
        covered = (L != ABSTAIN).any(axis=1) if covered is None else covered
        for split in {s for s in splits if s is not None}:
            in_split = splits == split
            self._items[split] = self._items.get(split, 0) + int(in_split.sum())
            self._covered[split] = self._covered.get(split, 0) + int(covered[in_split].sum())
        mask = (gold >= 0) & np.array([s is not None for s in splits], dtype=bool)
        if not mask.any():
            return
        L, probs, splits, gold, covered = L[mask], probs[mask], splits[mask], gold[mask], covered[mask]
        mv_probs = probs if counted else majority_proba(L, cardinality=self.K)
        # Ties go to a class chosen per item (never the first class, which would inflate it). The
        # "decided" scores are Snorkel's LabelModel.score() default: ties and uncovered items abstain
        # and are left out, so they are over the items the model decides.
        label, tied = hard_labels(probs, tie_hash[mask])
        mv_label, mv_tied = hard_labels(mv_probs, tie_hash[mask])
        predictions = np.stack([
            gold, label, mv_label,
            np.where(covered & ~tied, label, ABSTAIN), np.where(covered & ~mv_tied, mv_label, ABSTAIN),
        ]).astype(np.int8 if self.K < 127 else np.int32)
        for split in set(splits):
            self._gold.setdefault(split, []).append(predictions[:, splits == split])

    def result(self) -> dict[str, dict[str, float]]:
        accuracy: dict[str, dict[str, float]] = {}
        for split in sorted(self._gold):
            gold, predicted, mv_predicted, decided, mv_decided = np.concatenate(self._gold[split], axis=1)
            accuracy[split] = {
                "denoised": score(gold, predicted, "accuracy"),
                "majority_vote": score(gold, mv_predicted, "accuracy"),
                "denoised_decided": _decided_accuracy(gold, decided),
                "majority_vote_decided": _decided_accuracy(gold, mv_decided),
                "decided": float((decided != ABSTAIN).mean()),
                "coverage": self._covered[split] / self._items[split],
                "n": len(gold),
            }
            if self.K == 2:
                accuracy[split]["denoised_f1"] = score(gold, predicted, "f1")
                accuracy[split]["majority_vote_f1"] = score(gold, mv_predicted, "f1")
        return accuracy


def _splits(column: pa.ChunkedArray) -> np.ndarray:
    """The split of every item as an object array whose strings are shared (one per split, not per row)."""
    encoded = column.combine_chunks().dictionary_encode()
    names = np.array(encoded.dictionary.to_pylist() + [None], dtype=object)
    return names[encoded.indices.fill_null(len(encoded.dictionary)).to_numpy()]


def _nullable(values: pd.Series, kind: type, arrow: pa.DataType) -> pa.Array:
    return pa.array([None if pd.isna(v) else kind(v) for v in values], arrow)


LABEL_ROWS = 500_000  # items whose votes are read, predicted, tallied and written at once


@dataclass
class _Tallies:
    """What is summed over the batches: covered items, the LF summary, the accuracy."""

    lfs: LFSummaryTally
    accuracy: _AccuracyTally
    covered: int = 0
    tied: int = 0  # covered items whose most probable classes tie
    counted: int = 0  # votes read as per-item counts (vote_counts)


def _label_batches(run_id: str, rows: _LabelRows, model: Denoiser, tallies: _Tallies, *, tie_break: str,
                   progress: bool) -> Iterator[pa.Table]:
    """The ``labels`` rows, ``LABEL_ROWS`` items at a time: each batch's votes are read, predicted and
    tallied just before its rows are written."""
    from thresher.core.progress import track

    for batch in track(rows.batches(LABEL_ROWS), description="Denoising labels", total=-(-rows.n_items // LABEL_ROWS),
                       enabled=progress):
        L = rows.matrix(batch)
        probs = model.predict_proba(L)
        counts = rows.counts(batch, probs.shape[1])
        covered = (L != ABSTAIN).any(axis=1)
        if counts is not None:  # majority vote over the LFs' votes and the counted ones together
            tally = counts + np.stack([(L == k).sum(axis=1) for k in range(probs.shape[1])], axis=1)
            counted = tally.sum(axis=1) > 0
            probs[counted] = tally[counted] / tally[counted].sum(axis=1, keepdims=True)
            covered |= counted
            tallies.counted += int(counts.sum())
        gold, splits = gold_ids(batch.column("gold")), _splits(batch.column("split"))
        tie_hash = batch.column("tie_hash").to_numpy()
        label, tied = hard_labels(probs, tie_hash)
        if tie_break == "snorkel" and tied.any():
            tie_hash = tie_hash.astype(np.uint64)
            tie_hash[tied] = snorkel_tie_hash(batch.column("rn").to_numpy()[tied], probs.shape[1])
            label, tied = hard_labels(probs, tie_hash)
        tallies.covered += int(covered.sum())
        tallies.tied += int((covered & tied).sum())
        if L.shape[1]:
            tallies.lfs.add(L, gold)
        tallies.accuracy.add(L, probs, splits, gold, tie_hash, covered=covered if counts is not None else None)
        yield pa.table({
            "run_id": constant_column(run_id, len(probs)), "item_id": batch.column("item_id"),
            "label": pa.array(label, pa.int32()),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.astype(float).ravel()),
                                                       probs.shape[1]).cast(pa.list_(pa.float64())),
            "confidence": probs.max(axis=1).astype(float), "entropy": entropy(probs).astype(float),
            "covered": covered, "decided": covered & ~tied if tie_break == "abstain" else covered,
        })


def _write(con: duckdb.DuckDBPyConnection, run_id: str, votes: _Votes, through_seq: int, rows: _LabelRows,
           model: Denoiser, tallies: _Tallies, *, tie_break: str, progress: bool) -> pd.DataFrame:
    """The run's ``labels``, ``lfs``, ``lf_summary`` (and ``prompt_votes``) rows, in one transaction;
    returns the LF summary (complete once every batch of labels is written)."""
    names, lf_rows = votes.names, votes.lf_rows
    with transaction(con):
        replace_run_rows(con, "labels", run_id, _label_batches(run_id, rows, model, tallies, tie_break=tie_break,
                                                                progress=progress))
        summary_df = tallies.lfs.frame()
        summary_df["learned_accuracy"] = np.nan if model.learned_accuracy is None else model.learned_accuracy
        summary_df.loc[summary_df["coverage"] == 0, "learned_accuracy"] = np.nan  # an LF that never voted has none
        replace_run_rows(con, "lfs", run_id, pa.table({
            "run_id": [run_id] * len(names), "lf": names,
            "kind": [lf_rows[n][0] for n in names], "version": [lf_rows[n][1] for n in names],
            "definition": [lf_rows[n][2] for n in names],
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
        if votes.prompt_run is not None:
            prompted = votes.prompt_run.votes
            replace_run_rows(con, "prompt_votes", run_id, prompted.add_column(
                0, "run_id", pa.array([run_id] * prompted.num_rows, pa.string())))
    return summary_df


def label(
    con: duckdb.DuckDBPyConnection, config: LabelingConfig, *, run_id: str, progress: bool = False,
    chunking: Chunking | None = None,
) -> LabelSummary:
    """Apply the LFs, fit the label model and write ``lfs``, ``votes``, ``lf_summary``, ``labels``.

    With ``chunking`` the LFs are applied, and prompted LFs answered (or, on the embedded backend,
    encoded), chunk by chunk elsewhere (see :mod:`thresher.labeling.apply.chunked`, :mod:`thresher.labeling.llm.chunked`).
    Votes and items stay in DuckDB: the label model is fitted on a bounded sample of them, then the
    items are read, predicted and written ``LABEL_ROWS`` at a time, so memory does not grow with them.
    """
    through_seq = max_item_seq(con)
    rows: _LabelRows | None = None
    try:
        votes = _collect_votes(con, config, run_id=run_id, through_seq=through_seq, progress=progress,
                               chunking=chunking)
        if config.vote_counts and not con.sql("SELECT count(*) FROM vote_counts").fetchall()[0][0]:
            raise ValueError("labeling.vote_counts is set but no vote counts were imported with the data "
                             "(a source's vote_counts names the count column of each class).")
        rows = _LabelRows(con, len(votes.names), through_seq, counts=config.vote_counts)
        if rows.n_items == 0:
            raise ValueError("There are no items to label. Run `thresher ingest CONFIG` first.")
        release_buffers(con)  # what DuckDB kept while it grouped the votes
        model, answers = _fit(config, rows) if votes.names else (_counts_only(len(config.classes)), 0)
        reviews = {**reviews_state(con), "used": answers,
                   "matter": config.model.model == "auto" and config.model.use_reviews}
        tallies = _Tallies(LFSummaryTally(votes.names), _AccuracyTally(len(config.classes)))
        summary_df = _write(con, run_id, votes, through_seq, rows, model, tallies, tie_break=config.model.tie_break,
                            progress=progress)
    finally:
        if rows is not None:
            rows.drop()
        con.execute(f"DROP TABLE IF EXISTS {RUN_VOTES}")
    summary = LabelSummary(
        run_id=run_id, n_items=rows.n_items, n_lfs=len(votes.names), n_votes=rows.n_votes,
        coverage=tallies.covered / rows.n_items, tied=tallies.tied, tie_break=config.model.tie_break, accuracy=tallies.accuracy.result(), lfs=summary_df,
        faults=votes.faults.as_dict(), model=model.params, selection=model.selection, evaluated=votes.evaluated,
        counted_votes=tallies.counted, reviews=reviews,
        llm=None if votes.prompt_run is None else votes.prompt_run.as_dict(), classes=list(config.classes),
    )
    logger.info("Labeled %d items with %d LFs; coverage %.3f; accuracy %s",
                summary.n_items, summary.n_lfs, summary.coverage, summary.accuracy)
    return summary


def _counts_only(cardinality: int) -> Denoiser:
    """Majority vote with no LF: every item's probabilities come from its vote counts (uniform without)."""
    return Denoiser(lambda L: np.full((len(L), cardinality), 1.0 / cardinality), 0, {"model": "majority"})


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
        """Prompts left unanswered, or (model: auto with use_reviews) answers given since the last run."""
        summary = latest_summary(con, "label") or {}
        llm = summary.get("llm")
        reviews = summary.get("reviews") or {}
        if reviews.get("matter") and reviews.get("hash") != reviews_state(con)["hash"]:
            return True
        return bool(llm) and (llm.get("failed", 0) > 0 or llm.get("budget_stopped") is not None)

    def uses_cluster(self, config: LabelingConfig) -> bool:
        return True

    def retries(self, config: LabelingConfig) -> int:
        return 1 if config.llm is not None and config.llm.backend == "openai" else 0

    def extra(self, con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
        from thresher.storage.repo import stored_lf_summary

        return {"lf_summary": stored_lf_summary(con, run_id)}
