"""What a person should review first, and everything the review page shows about each item.

A strategy orders the items of the latest label run (and detect run, where there is one):

- ``disagreement``: items on which the candidate label models (every registered one, fitted on the run's
  votes) do not all give the same class, the most split first: what decides the label-model choice.
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


def candidate_labels(L: np.ndarray, cardinality: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Each registered label model's class for every row of ``L`` (fitted on ``L``; a model that cannot be
    fitted on these votes, as Snorkel's with fewer than 3 LFs, is left out)."""
    from thresher.labeling.label_models import LABEL_MODELS

    out = {}
    for name, kind in LABEL_MODELS.items():
        try:
            out[name] = kind(cardinality, seed=seed).fit(L).predict_proba(L).argmax(axis=1)
        except ValueError:
            continue
    return out


def build_queue(con: duckdb.DuckDBPyConnection, classes: list[str], *, strategy: str, limit: int = 500,
                reviewer: str | None = None, seed: int = 0) -> ReviewQueue:
    """The first ``limit`` items ``strategy`` chooses (see the module docstring), with what the page shows."""
    if strategy not in STRATEGIES:
        raise ValueError(f"The review strategy must be one of {', '.join(STRATEGIES)}. Got {strategy!r} instead.")
    from thresher.labeling.matrix import vote_matrix

    runs = _runs(con)
    if runs["label"] is None:
        raise LookupError("No completed label run in this database: run `thresher label CONFIG` (or `thresher run`) first.")
    items = con.execute(
        "SELECT l.item_id, l.id, i.text, l.label, l.probs, l.confidence, l.decided, l.gold FROM labelled l "
        "JOIN items i USING (item_id) WHERE l.run_id = ? AND l.item_id NOT IN "
        "(SELECT item_id FROM reviews WHERE reviewer = coalesce(?, reviewer)) ORDER BY l.item_id",
        [runs["label"], reviewer]).fetchall()
    ids = [r[0] for r in items]
    lfs = [r[0] for r in con.execute("SELECT lf FROM lfs WHERE run_id = ? ORDER BY lf", [runs["label"]]).fetchall()]
    votes = con.sql("SELECT item_id, lf, vote::INTEGER AS vote FROM votes WHERE run_id = $run AND item_id IN "
                    "(SELECT unnest($ids))", params={"run": runs["label"], "ids": ids}).to_arrow_table()
    L = vote_matrix(votes, ids, lfs) if ids else np.empty((0, len(lfs)), dtype=np.int8)
    label = np.array([-1 if r[3] is None else r[3] for r in items])
    predicted = candidate_labels(L, len(classes), seed) if len(L) else {}
    order, why = _order(strategy, con, runs, items, L, label, predicted, seed, list(classes))
    chosen = order[:limit]
    scores = _detector_scores(con, runs["detect"], [ids[i] for i in chosen])
    queue = [ReviewItem(ids[i], items[i][1], items[i][2], items[i][3], None if items[i][4] is None else list(items[i][4]),
                        items[i][7], {lf: int(L[i, j]) for j, lf in enumerate(lfs) if L[i, j] >= 0},
                        {m: int(p[i]) for m, p in predicted.items()}, scores.get(ids[i], {}), why[i]) for i in chosen]
    return ReviewQueue(strategy, queue, list(classes), runs)


def _order(strategy: str, con: duckdb.DuckDBPyConnection, runs: dict[str, str | None], items: list[tuple],
           L: np.ndarray, label: np.ndarray, predicted: dict[str, np.ndarray], seed: int,
           classes: list[str]) -> tuple[np.ndarray, list[str]]:
    """The item indices in review order, and why each was chosen (``predicted``: each candidate model's classes)."""
    n = len(items)
    why = [""] * n
    if strategy == "disagreement":
        stacked = np.stack(list(predicted.values())) if predicted else np.zeros((0, n), dtype=int)
        distinct = np.array([len(set(stacked[:, i])) for i in range(n)]) if len(stacked) else np.zeros(n, dtype=int)
        covered = (L >= 0).sum(axis=1)
        order = np.array([i for i in np.lexsort((-covered, -distinct)) if distinct[i] > 1], dtype=int)
        for i in order:
            why[i] = "the label models disagree: " + ", ".join(f"{m} {classes[int(p[i])]}" for m, p in predicted.items())
        return order, why
    if strategy == "flagged":
        if runs["detect"] is None:
            raise LookupError("The flagged strategy needs a completed detect run: run `thresher detect CONFIG` first.")
        detector = con.execute("SELECT coalesce(summary->>'use', 'confident_learning') FROM runs WHERE run_id = ? "
                               "AND stage = 'detect'", [runs["detect"]]).fetchall()[0][0]
        flagged = dict(con.execute("SELECT item_id, score FROM noise_scores WHERE run_id = ? AND detector = ? AND is_issue",
                                   [runs["detect"], detector]).fetchall())
        index = {r[0]: i for i, r in enumerate(items)}
        order = np.array([index[k] for k, _ in sorted(flagged.items(), key=lambda kv: (kv[1], kv[0])) if k in index], dtype=int)
        for i in order:
            why[i] = f"flagged by {detector} (score {flagged[items[i][0]]:.3f})"
        return order, why
    if strategy == "low_confidence":
        confidence = np.array([np.inf if r[5] is None or not r[6] else r[5] for r in items])
        order = np.array([i for i in np.argsort(confidence, kind="stable") if np.isfinite(confidence[i])], dtype=int)
        for i in order:
            why[i] = f"the label model is unsure (confidence {confidence[i]:.3f})"
        return order, why
    if strategy == "conflict":
        against = np.array([int(((L[i] >= 0) & (L[i] != label[i])).sum()) if label[i] >= 0 else 0 for i in range(n)])
        order = np.array([i for i in np.argsort(-against, kind="stable") if against[i] > 0], dtype=int)
        for i in order:
            why[i] = f"{against[i]} LF vote(s) against the label"
        return order, why
    rng = np.random.default_rng(seed)
    groups = [rng.permutation(np.flatnonzero(label == k)) for k in np.unique(label)]
    order = np.array([g[j] for j in range(max((len(g) for g in groups), default=0)) for g in groups if j < len(g)], dtype=int)
    for i in order:
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
