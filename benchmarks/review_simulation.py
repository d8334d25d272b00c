"""Benchmark: a simulated reviewer on the shared crowd and vote datasets, for every review strategy.

For each dataset of benchmarks/label_models.py (the same vote matrices and gold), this does what a
user does with ``thresher review`` and ``model: auto``:

1. The label stage without answers: ``auto`` chooses by held-out vote agreement (no gold).
2. The review page's queue for each strategy, built by the page's own ordering
   (``pipeline.review_queue.order_items``) on that run's state: the candidate label models' classes
   (disagreement), the label model's confidence (low_confidence), the LF votes against the label
   (conflict), a random sample stratified by label (random), and thresher's detect stage at its
   defaults on the denoised labels (flagged; text datasets only: crowd sets have no features).
3. A reviewer answers the first 25, 50, 100 and 200 items of the queue with the gold label (fewer when
   the queue is shorter: disagreement lists only items on which the models differ).
4. The label stage again: with at least ``min_reviews`` (20) answers, auto's candidates (the registered
   label models: majority vote, Snorkel's LabelModel, Dawid-Skene, one-coin;
   ``labeling.model.selection_candidates``) are scored on the answers and the best kept, by
   ``labeling.model.choose_on_gold``, the function the stage calls (answers on items without votes left
   out; each answer weighted by the unanswered items of its kind of disagreement). Candidates are fitted
   once per dataset (the fit reads no gold and no answers), so only the choice is redone per queue.

Each cell: the chosen model and its accuracy on the gold of the rest (covered items nobody answered),
and how far that is below the best candidate on the same items ("best - chosen", in points; 0 means the
best was picked). A cell is left empty ("—") where fewer than 10 covered items would remain (the quiz
sets have 20-36 questions). The strategies that draw at random (disagreement, random) are run again with
10 queue seeds: how often the best was picked, and the mean and worst loss.

    .venv/bin/python -m benchmarks.review_simulation            # --only youtube "rte crowd": some datasets
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.label_models import (TREC_CLASSES, _sms_rows, _trec_rows, datasets)
from benchmarks.shared import SHARED
from thresher.labeling.config import DenoiseConfig
from thresher.labeling.lf.base import ABSTAIN
from thresher.labeling.model import choose_on_gold, fit_candidate, fit_denoiser, selection_candidates
from thresher.labeling.ties import hard_labels
from thresher.pipeline.review_queue import STRATEGIES, candidate_labels, order_items

SIZES = [25, 50, 100, 200]
MIN_REST = 10
SEEDS = 10  # queue seeds of the strategies that draw at random
SEEDED = ("disagreement", "random")


def _wrench_texts(folder: str, splits: list[str]) -> list[str]:
    return [entry["data"]["text"] for split in splits
            for entry in json.loads((SHARED / folder / f"{split}.json").read_text()).values()]


TEXTS: dict[str, Callable[[], list[str]]] = {
    "youtube": lambda: _wrench_texts("wrench_youtube", ["train", "valid", "test"]),
    "sms (wrench)": lambda: _wrench_texts("wrench_sms_partial", ["valid", "test"]),
    "sms rules": lambda: [t for t, _ in _sms_rows()],
    "trec rules": lambda: [t for t, _ in _trec_rows()],
}
CLASS_NAMES = {"trec rules": TREC_CLASSES}


def flag_scores(texts: list[str], label: np.ndarray, classes: list[str]) -> np.ndarray:
    """thresher's detect stage at its defaults on the labelled items (``label`` >= 0): the score of each
    item the detector in use flags, NaN elsewhere."""
    from thresher.reweighting.detect.stage import DetectConfig, detect
    from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
    from thresher.storage.schema import connect

    scores = np.full(len(label), np.nan)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        path.write_text("".join(json.dumps({"id": str(i), "text": texts[i], "label": int(label[i])}) + "\n"
                                for i in np.flatnonzero(label >= 0)))
        con = connect(Path(tmp) / "t.duckdb")
        ingest(con, IngestConfig(classes=classes, sources=[SourceConfig(
            path=str(path), dataset="d", columns={"id": "id", "label": "label"})]))
        summary = detect(con, DetectConfig(labels_from="given"), run_id="d", label_run=None, classes=classes)
        for item, score in con.execute(
                "SELECT item_id, score FROM noise_scores WHERE run_id = 'd' AND detector = ? AND is_issue",
                [summary.use]).fetchall():
            scores[int(item.removeprefix("d:"))] = score
        con.close()
    return scores


def simulate(name: str, K: int, L: np.ndarray, gold: np.ndarray) -> dict:
    """Every strategy x size cell of one dataset (see the module docstring)."""
    config = DenoiseConfig(model="auto")
    tie_hash = np.random.default_rng(0).integers(0, 2**63, size=len(L), dtype=np.uint64)
    covered = (L != ABSTAIN).any(axis=1)
    before = fit_denoiser(L, cardinality=K, config=config)
    probs = before.predict_proba(L)
    label, tied = hard_labels(probs, tie_hash)
    label = np.where(covered, label, -1)
    confidence = np.where(covered & ~tied, probs.max(axis=1), np.inf)
    candidates = selection_candidates(config, L.shape[1], gold=True)
    predicts = [fit_candidate(L, cardinality=K, params=p, class_balance=None, seed=config.seed)[0] for p in candidates]
    predicted = np.stack([hard_labels(p(L), tie_hash)[0] for p in predicts])
    correct = predicted == gold
    no_answers = candidates.index(before.params)
    shown = candidate_labels(L, K, tie_hash, config)
    flags = None
    if name in TEXTS:
        flags = flag_scores(TEXTS[name](), label, CLASS_NAMES.get(name, [str(k) for k in range(K)]))
    def cell(order: np.ndarray, n: int) -> dict | None:
        answered = order[:n]
        rest = covered.copy()
        rest[answered] = False
        if rest.sum() < MIN_REST:
            return None
        if len(answered) >= config.min_reviews:
            chosen, _ = choose_on_gold(predicts, candidates, (L[answered], gold[answered], tie_hash[answered]),
                                       config.metric, population=L, seed=config.seed)
        else:
            chosen = no_answers
        accuracy = correct[:, rest].mean(axis=1)
        return {"answered": len(answered), "chosen": _short(candidates[chosen]),
                "accuracy": float(accuracy[chosen]), "gap": float(accuracy.max() - accuracy[chosen])}

    cells: dict[tuple[str, int], dict] = {}
    repeats: dict[tuple[str, int], list[dict]] = {}
    for strategy in STRATEGIES:
        if strategy == "flagged" and flags is None:
            continue
        for seed in range(SEEDS if strategy in SEEDED else 1):
            order = order_items(strategy, L, label, predicted=shown, confidence=confidence, flag_scores=flags, seed=seed)
            for n in SIZES:
                result = cell(order, n)
                if result is None:
                    continue
                if seed == 0:
                    cells[strategy, n] = result
                repeats.setdefault((strategy, n), []).append(result)
    accuracy = correct[:, covered].mean(axis=1)
    return {"items": len(L), "no_answers": {"chosen": _short(candidates[no_answers]), "accuracy": float(accuracy[no_answers]),
                                            "gap": float(accuracy.max() - accuracy[no_answers])},
            "best": _short(candidates[int(accuracy.argmax())]), "cells": cells, "repeats": repeats}


def _short(params: dict) -> str:
    return str(params["model"])  # auto's candidates: one per registered model


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="dataset names to run (default: all)")
    args = parser.parse_args()
    console = Console(width=220)
    console.print(f"snorkel {version('snorkel')}, crowd-kit {version('crowd-kit')}, cleanlab {version('cleanlab')}, "
                  f"numpy {version('numpy')}")
    table = Table(title="Simulated reviewer: label model chosen on the answers, accuracy on the rest (best - chosen, points)")
    for column in ["dataset", "strategy", "no answers", *(f"{n} answers" for n in SIZES)]:
        table.add_column(column)
    seeded = Table(title=f"Over {SEEDS} queue seeds: runs in which the best candidate on the rest was picked, "
                         "mean and worst best - chosen (points)")
    for column in ["dataset", "strategy", *(f"{n} answers" for n in SIZES)]:
        seeded.add_column(column)
    hits: dict[int, list[tuple[str, bool]]] = {n: [] for n in SIZES}
    pooled: dict[int, list[float]] = {n: [] for n in SIZES}
    start = time.perf_counter()
    for name, K, L, gold in datasets():
        if args.only and name not in args.only:
            continue
        result = simulate(name, K, L, gold)
        base = result["no_answers"]
        first = True
        for strategy in STRATEGIES:
            row = []
            for n in SIZES:
                cell = result["cells"].get((strategy, n))
                if cell is None:
                    row.append("—")
                    continue
                more = "" if cell["answered"] == n else f" [{cell['answered']} in queue]"
                row.append(f"{cell['chosen']} {cell['accuracy']:.3f} ({100 * cell['gap']:+.1f}){more}")
                if strategy == "disagreement":
                    hits[n].append((name, cell["gap"] == 0))
            if all(r == "—" for r in row) and strategy == "flagged":
                continue
            table.add_row(f"{name} ({result['items']})" if first else "", strategy,
                          f"{base['chosen']} {base['accuracy']:.3f} ({100 * base['gap']:+.1f})" if first else "", *row)
            first = False
        table.add_section()
        for strategy in SEEDED:
            row = []
            for n in SIZES:
                runs = result["repeats"].get((strategy, n), [])
                gaps = [100 * r["gap"] for r in runs]
                if strategy == "disagreement":
                    pooled[n] += gaps
                row.append(f"{sum(g == 0 for g in gaps)}/{len(gaps)}, {np.mean(gaps):.2f}, {max(gaps):.1f}" if gaps else "—")
            seeded.add_row(name if strategy == SEEDED[0] else "", strategy, *row)
        seeded.add_section()
        console.print(f"{name}: done ({time.perf_counter() - start:.0f} s); best on all covered items: {result['best']}",
                      highlight=False)
    console.print(table)
    console.print(seeded)
    for n in SIZES:
        missed = [name for name, ok in hits[n] if not ok]
        gaps = np.array(pooled[n])
        console.print(f"disagreement, {n} answers: the best candidate picked on {len(hits[n]) - len(missed)} of "
                      f"{len(hits[n])} datasets with seed 0" + (f" (not on: {', '.join(missed)})" if missed else "")
                      + f"; over {SEEDS} seeds in {(gaps == 0).mean():.0%} of {len(gaps)} runs, "
                      f"mean loss {gaps.mean():.2f} points, worst {gaps.max():.1f}", highlight=False)

if __name__ == "__main__":
    main()
