"""Benchmark: thresher's detect stage against cleanlab called directly, on every shared dataset with text.

Each dataset's training texts get the label a user would check: the majority vote of its LFs on the
covered items, ties broken per item (WRENCH YouTube's 10 LFs, the ImplyLoss SMS and TREC rules applied
by thresher, COSINE's aggregated rule label on AG News and IMDB), or the crowd's majority (the quiz
questions, option letters as classes). thresher's detect runs at its defaults (``C: auto`` picks C and
``min_df``; 5 folds) on a DuckDB file. cleanlab's ``find_label_issues`` is then called as a user would
write it, with the C and ``min_df`` thresher chose: scikit-learn's ``TfidfVectorizer`` (1-2-grams,
sublinear tf, accents stripped, no vocabulary cap), ``LogisticRegression`` (lbfgs), ``cross_val_predict``
over ``StratifiedKFold(5, shuffle=True, random_state=0)``. A third column caps the vocabulary at
thresher's ``max_features`` (50,000), which isolates the cap's effect, and a fourth also uses
thresher's solver (newton-cg), which isolates the solver's. Reported: flags of each, how
many differ, F1 and AUROC of each at finding labels that differ from gold, and the vocabulary size.

    .venv/bin/python -m benchmarks.detect_equality
"""

from __future__ import annotations

import json
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.metrics import f1_score, roc_auc_score

from benchmarks.curation_value import agnews, imdb, sms, trec, youtube
from thresher.labeling.ties import hard_labels
from thresher.reweighting.detect.stage import DetectConfig, detect
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from thresher.storage.schema import connect

QUIZ_ITEMS = "li2017_quiz_crowd"


def majority(L: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Each covered item's majority vote (ties per item) and the covered mask."""
    counts = np.stack([(L == k).sum(axis=1) for k in range(K)], axis=1).astype(float)
    covered = counts.sum(axis=1) > 0
    probs = counts[covered] / counts[covered].sum(axis=1, keepdims=True)
    label, _ = hard_labels(probs, np.random.default_rng(0).integers(0, 2**63, size=len(probs), dtype=np.uint64))
    return label, covered


def quiz() -> tuple[str, list[str], list[str], np.ndarray, np.ndarray]:
    """The 155 quiz questions (question and options as text), labelled by the crowd's majority."""
    import pandas as pd

    from benchmarks.shared import SHARED

    folder = SHARED / QUIZ_ITEMS
    items = pd.read_csv(folder / "items.csv").merge(pd.read_csv(folder / "gold.csv"), on="item")
    items["text"] = items["question"] + " | " + items[list("ABCDEF")].fillna("").agg(" | ".join, axis=1)
    answers = pd.read_csv(folder / "answers.csv")
    letters = sorted(set(answers["answer"]) | set(items["gold"]))
    votes = answers.groupby(["item", "answer"]).size().unstack(fill_value=0).reindex(
        index=items["item"], columns=letters, fill_value=0).to_numpy()
    label, _ = hard_labels(votes / votes.sum(axis=1, keepdims=True),
                           np.random.default_rng(0).integers(0, 2**63, size=len(votes), dtype=np.uint64))
    gold = np.array([letters.index(g) for g in items["gold"]])
    return "quiz questions", letters, list(items["text"]), label, gold


def _voted(load) -> tuple[str, list[str], list[str], np.ndarray, np.ndarray]:
    data = load()
    label, covered = majority(data.L, len(data.classes))
    texts = [t for t, c in zip(data.train.texts, covered) if c]
    return data.name, data.classes, texts, label, data.train.gold[covered]


DATASETS = {"youtube": lambda: _voted(youtube), "sms": lambda: _voted(sms), "trec": lambda: _voted(trec),
            "agnews": lambda: _voted(agnews), "imdb": lambda: _voted(imdb), "quiz": quiz}


def datasets():
    for load in DATASETS.values():
        yield load()


def thresher_flags(classes: list[str], texts: list[str], labels: np.ndarray, work: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """detect's flags and label-quality scores (item order) at its defaults, and its features summary."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": f"{i:06d}", "text": t, "label": int(y)}) + "\n"
                            for i, (t, y) in enumerate(zip(texts, labels))))
    con = connect(work / "t.duckdb")
    ingest(con, IngestConfig(classes=classes, sources=[SourceConfig(path=str(path), dataset="d",
                                                                    columns={"id": "id", "label": "label"})]))
    summary = detect(con, DetectConfig(labels_from="given", detectors=["confident_learning"]), run_id="d",
                     label_run=None, classes=classes)
    rows = con.execute("SELECT n.is_issue, n.score FROM items i JOIN noise_scores n USING (item_id) "
                       "WHERE n.run_id = 'd' ORDER BY i.item_id").fetchall()
    con.close()
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), summary.features


def cleanlab_direct(texts: list[str], labels: np.ndarray, C: float, min_df: int, max_features: int | None,
                    solver: str = "lbfgs"):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    X = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, strip_accents="unicode",
                        max_features=max_features).fit_transform(texts)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    probs = cross_val_predict(LogisticRegression(C=C, solver=solver, max_iter=2000), X, labels, cv=folds,
                              method="predict_proba")
    return find_label_issues(labels, probs, n_jobs=1), get_label_quality_scores(labels, probs), X.shape[1]


def main() -> None:
    console = Console(width=200)
    console.print(f"cleanlab {version('cleanlab')}, scikit-learn {version('scikit-learn')}, numpy {version('numpy')}")
    table = Table(title="detect (defaults) vs cleanlab called directly: flags, differing flags, F1 / AUROC at wrong labels")
    for column in ["dataset", "items", "wrong", "C / min_df", "vocabulary", "thresher", "cleanlab direct",
                   "differ", "cleanlab, 50k cap", "differ (cap)", "cap + newton-cg", "differ (both)", "seconds t / c"]:
        table.add_column(column)
    for name, classes, texts, labels, gold in datasets():
        wrong = labels != gold

        def quality(flags: np.ndarray, scores: np.ndarray) -> str:
            return (f"{int(flags.sum())}: {f1_score(wrong, flags, zero_division=0):.3f} / "
                    f"{roc_auc_score(wrong, -scores):.3f}")

        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            ours, our_scores, features = thresher_flags(classes, texts, labels, Path(work))
            ours_seconds = time.perf_counter() - started
        C, min_df = features["C"], features["min_df"]
        # Items of a class with fewer than n_folds labels are not checked by detect: compare the others.
        started = time.perf_counter()
        checked = np.isin(labels, np.flatnonzero(np.bincount(labels) >= 5))
        kept = [t for t, c in zip(texts, checked) if c]
        theirs = np.zeros(len(labels), dtype=bool)
        their_scores = np.ones(len(labels))
        theirs[checked], their_scores[checked], vocabulary = cleanlab_direct(kept, labels[checked], C, min_df, None)
        their_seconds = time.perf_counter() - started
        capped = np.zeros(len(labels), dtype=bool)
        capped_scores = np.ones(len(labels))
        capped[checked], capped_scores[checked], _ = cleanlab_direct(kept, labels[checked], C, min_df, 50_000)
        same = np.zeros(len(labels), dtype=bool)
        same_scores = np.ones(len(labels))
        same[checked], same_scores[checked], _ = cleanlab_direct(kept, labels[checked], C, min_df, 50_000, "newton-cg")
        table.add_row(name, str(len(labels)), f"{wrong.mean():.3f}", f"{C:g} / {min_df}", f"{vocabulary:,}",
                      quality(ours, our_scores), quality(theirs, their_scores), str(int((ours != theirs).sum())),
                      quality(capped, capped_scores), str(int((ours != capped).sum())),
                      quality(same, same_scores), str(int((ours != same).sum())),
                      f"{ours_seconds:.1f} / {their_seconds:.1f}")
        console.print(f"{name}: done", highlight=False)
    console.print(table)


if __name__ == "__main__":
    main()
