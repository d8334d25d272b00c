"""What a person should review first, and everything the review page shows about each item.

A strategy orders the items of the latest label run (and detect run, where there is one):

- ``disagreement``: items on which the candidate label models (the ones ``model: auto`` chooses among,
  fitted on the run's votes) do not all give the same class: the answers on them decide the label-model
  choice (elsewhere every candidate gives the same class), in random (seeded) order, so that any number
  of answers is a fair sample of them. Items no LF voted on are left out: no label model labels them.
- ``flagged``: the items the detector in use flagged, most doubtful (lowest score) first: what decides
  what the export leaves out.
- ``low_confidence``: the decided items the label model is least sure of.
- ``conflict``: items whose LF votes disagree, the most votes against the label first.
- ``random``: a random sample stratified by denoised label (seeded): for unbiased estimates.

Items a reviewer already answered are left out. The queue is built once, read-only, when the page
starts, so answering never waits for the database to be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np

from thresher.labeling.config import DenoiseConfig
from thresher.labeling.model import disagreement_strata

Strategy = Literal["disagreement", "flagged", "low_confidence", "conflict", "random"]
STRATEGIES: tuple[str, ...] = ("disagreement", "flagged", "low_confidence", "conflict", "random")


@dataclass
class ReviewItem:
    """One item as the page shows it."""

    item_id: str
    id: str
    text: str
    label: int | None  # denoised (or given)
    probs: list[float] | None
    gold: int | None  # never shown; kept for the simulated reviewer of the benchmark
    votes: dict[str, int] = field(default_factory=dict)  # LF name -> class id (non-abstain votes)
    models: dict[str, int] = field(default_factory=dict)  # candidate label model -> its class
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {score, flagged}
    why: str = ""

    def as_dict(self, classes: list[str]) -> dict[str, Any]:
        def name(k: int | None) -> str | None:
            return None if k is None else classes[k]

        return {"item_id": self.item_id, "id": self.id, "text": self.text, "label": self.label,
                "label_name": name(self.label), "probs": self.probs,
                "votes": {lf: name(v) for lf, v in self.votes.items()},
                "models": {m: name(v) for m, v in self.models.items()}, "detectors": self.detectors, "why": self.why}


@dataclass
class ReviewQueue:
    """The items to review in order, with the runs they were shown from."""

    strategy: str
    items: list[ReviewItem]
    classes: list[str]
    runs: dict[str, str | None]


def _runs(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    rows = dict(con.execute("SELECT stage, run_id FROM latest_runs").fetchall())
    return {"label": rows.get("label"), "detect": rows.get("detect")}


def candidate_labels(L: np.ndarray, cardinality: int, tie_hash: np.ndarray,
                     config: DenoiseConfig | None = None) -> dict[str, np.ndarray]:
    """Each of ``model: auto``'s candidates' class for every row of ``L`` (fitted on ``L`` with the configured
    settings; a model that cannot be fitted on these votes, as Snorkel's with fewer than 3 LFs, is left out).
    Ties go where the label stage sends them (``tie_hash``: each item's), so that two models disagree here
    exactly where the answers can tell them apart."""
    from thresher.labeling.model import auto_candidates, fit_candidate
    from thresher.labeling.ties import hard_labels

    config = config or DenoiseConfig()
    out = {}
    for params in auto_candidates(config):
        try:
            predict, _ = fit_candidate(L, cardinality=cardinality, params=params, class_balance=config.class_balance,
                                       seed=config.seed)
        except ValueError:
            continue
        out[params["model"]] = hard_labels(predict(L), tie_hash)[0]
    return out


def build_queue(con: duckdb.DuckDBPyConnection, classes: list[str], *, strategy: str, limit: int = 500,
                reviewer: str | None = None, seed: int = 0, denoise: DenoiseConfig | None = None) -> ReviewQueue:
    """The first ``limit`` items ``strategy`` chooses (see the module docstring), with what the page shows;
    ``denoise``: the project's label-model settings, which the candidates are fitted with."""
    if strategy not in STRATEGIES:
        raise ValueError(f"The review strategy must be one of {', '.join(STRATEGIES)}. Got {strategy!r} instead.")
    from thresher.labeling.matrix import vote_matrix

    runs = _runs(con)
    if runs["label"] is None:
        raise LookupError("No completed label run in this database: run `thresher label CONFIG` (or `thresher run`) first.")
    items = con.execute(
        "SELECT l.item_id, l.id, i.text, l.label, l.probs, l.confidence, l.decided, l.gold, hash(l.item_id) "
        "FROM labelled l "
        "JOIN items i USING (item_id) WHERE l.run_id = ? AND l.item_id NOT IN "
        "(SELECT item_id FROM reviews WHERE reviewer = coalesce(?, reviewer)) ORDER BY l.item_id",
        [runs["label"], reviewer]).fetchall()
    ids = [r[0] for r in items]
    lfs = [r[0] for r in con.execute("SELECT lf FROM lfs WHERE run_id = ? ORDER BY lf", [runs["label"]]).fetchall()]
    votes = con.sql("SELECT item_id, lf, vote::INTEGER AS vote FROM votes WHERE run_id = $run AND item_id IN "
                    "(SELECT unnest($ids))", params={"run": runs["label"], "ids": ids}).to_arrow_table()
    L = vote_matrix(votes, ids, lfs) if ids else np.empty((0, len(lfs)), dtype=np.int8)
    label = np.array([-1 if r[3] is None else r[3] for r in items])
    tie_hash = np.array([r[8] for r in items], dtype=np.uint64)
    predicted = candidate_labels(L, len(classes), tie_hash, denoise) if len(L) else {}
    order, why = _order(strategy, con, runs, items, L, label, predicted, seed, list(classes))
    chosen = order[:limit]
    scores = _detector_scores(con, runs["detect"], [ids[i] for i in chosen])
    queue = [ReviewItem(ids[i], items[i][1], items[i][2], items[i][3], None if items[i][4] is None else list(items[i][4]),
                        items[i][7], {lf: int(L[i, j]) for j, lf in enumerate(lfs) if L[i, j] >= 0},
                        {m: int(p[i]) for m, p in predicted.items()}, scores.get(ids[i], {}), why[i]) for i in chosen]
    return ReviewQueue(strategy, queue, list(classes), runs)


def order_items(strategy: str, L: np.ndarray, label: np.ndarray, *, predicted: dict[str, np.ndarray],
                confidence: np.ndarray | None = None, flag_scores: np.ndarray | None = None,
                seed: int = 0) -> np.ndarray:
    """The item indices ``strategy`` would show, in review order (see the module docstring).

    ``L``: the votes; ``label``: the denoised class (-1: none); ``predicted``: each candidate label model's
    class; ``confidence``: the label model's (``inf`` where undecided); ``flag_scores``: the detector's score
    of flagged items (``nan`` where not flagged). NumPy in, NumPy out, so the benchmark's simulated
    reviewer sees the order the page shows."""
    n = len(L)
    rng = np.random.default_rng(seed)
    if strategy == "disagreement":
        stacked = np.stack(list(predicted.values())) if predicted else np.zeros((0, n), dtype=int)
        strata = disagreement_strata(stacked) if len(stacked) else np.zeros(n, dtype=np.int64)
        strata[~(L >= 0).any(axis=1)] = 0  # no votes: the label model labels it not, whatever each says
        return rng.permutation(np.flatnonzero(strata != 0))
    if strategy == "flagged":
        if flag_scores is None:
            raise ValueError("The flagged strategy needs the detector's scores of the flagged items.")
        flagged = np.flatnonzero(~np.isnan(flag_scores))
        return flagged[np.argsort(flag_scores[flagged], kind="stable")]
    if strategy == "low_confidence":
        if confidence is None:
            raise ValueError("The low_confidence strategy needs the label model's confidence.")
        return np.array([i for i in np.argsort(confidence, kind="stable") if np.isfinite(confidence[i])], dtype=int)
    if strategy == "conflict":
        against = ((L >= 0) & (L != label[:, None])).sum(axis=1) * (label >= 0)
        return np.array([i for i in np.argsort(-against, kind="stable") if against[i] > 0], dtype=int)
    return _interleave([rng.permutation(np.flatnonzero(label == k)) for k in np.unique(label)])


def _interleave(groups: list[np.ndarray]) -> np.ndarray:
    """One item of each group in turn: the first of every group, then the second, ..."""
    return np.array([g[j] for j in range(max((len(g) for g in groups), default=0)) for g in groups if j < len(g)], dtype=int)


def _order(strategy: str, con: duckdb.DuckDBPyConnection, runs: dict[str, str | None], items: list[tuple],
           L: np.ndarray, label: np.ndarray, predicted: dict[str, np.ndarray], seed: int,
           classes: list[str]) -> tuple[np.ndarray, list[str]]:
    """The item indices in review order (:func:`order_items` on this run's state), and why each was chosen."""
    n = len(items)
    why = [""] * n
    confidence = np.array([np.inf if r[5] is None or not r[6] else r[5] for r in items])
    flag_scores, detector = None, ""
    if strategy == "flagged":
        if runs["detect"] is None:
            raise LookupError("The flagged strategy needs a completed detect run: run `thresher detect CONFIG` first.")
        detector = con.execute("SELECT coalesce(summary->>'use', 'confident_learning') FROM runs WHERE run_id = ? "
                               "AND stage = 'detect'", [runs["detect"]]).fetchall()[0][0]
        flagged = dict(con.execute("SELECT item_id, score FROM noise_scores WHERE run_id = ? AND detector = ? AND is_issue",
                                   [runs["detect"], detector]).fetchall())
        flag_scores = np.array([flagged.get(r[0], np.nan) for r in items], dtype=float)
    order = order_items(strategy, L, label, predicted=predicted, confidence=confidence, flag_scores=flag_scores, seed=seed)
    for i in order:
        if strategy == "disagreement":
            why[i] = "the label models disagree: " + ", ".join(f"{m} {classes[int(p[i])]}" for m, p in predicted.items())
        elif strategy == "flagged":
            assert flag_scores is not None
            why[i] = f"flagged by {detector} (score {flag_scores[i]:.3f})"
        elif strategy == "low_confidence":
            why[i] = f"the label model is unsure (confidence {confidence[i]:.3f})"
        elif strategy == "conflict":
            why[i] = f"{int(((L[i] >= 0) & (L[i] != label[i])).sum())} LF vote(s) against the label"
        else:
            why[i] = "a random sample, stratified by label"
    return order, why


def _detector_scores(con: duckdb.DuckDBPyConnection, detect_run: str | None, item_ids: list[str]) -> dict[str, dict[str, Any]]:
    if detect_run is None or not item_ids:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for item_id, detector, score, flagged in con.execute(
            "SELECT item_id, detector, score, is_issue FROM noise_scores WHERE run_id = ? AND item_id IN (SELECT unnest(?))",
            [detect_run, item_ids]).fetchall():
        out.setdefault(item_id, {})[detector] = {"score": round(float(score), 4), "flagged": bool(flagged)}
    return out
