"""Benchmark: detect at its defaults against cleanlab called directly, time and AUROC, on real rule noise.

Datasets: the rule labels of SMS and TREC (majority vote of the ImplyLoss rules, covered items) and
AG News's aggregated rule label (COSINE's ``major``, dev, covered items), checked against gold.
thresher runs its detect stage at the defaults (``C: auto`` over 3 C x 2 min_df, newton-cg,
5 folds) on a DuckDB file, from the given labels (ingest not timed). "cleanlab direct" is what a
user writes by hand: TF-IDF (1-2-grams, sublinear), ``cross_val_predict`` of scikit-learn's
``LogisticRegression`` at its defaults (C 1, lbfgs) over 5 stratified folds, then cleanlab's
``find_label_issues``; "cleanlab direct, tuned C" is the same with the C and min_df thresher chose.
AUROC: of the label-quality score at finding the labels that differ from gold. The runs are
interleaved, ``--repeats`` times; the medians are shown.

    .venv/bin/python -m benchmarks.detect_cost
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from importlib.metadata import version

import numpy as np

from benchmarks.curation_value import agnews
from benchmarks.label_models import _rule_noise, _thresher_detect


def cleanlab_direct(texts: list[str], labels: np.ndarray, gold: np.ndarray, C: float = 1.0, min_df: int = 1) -> dict:
    from cleanlab.filter import find_label_issues
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    start = time.perf_counter()
    keep = np.isin(labels, np.flatnonzero(np.bincount(labels) >= 5))  # cross_val_predict needs 5 per class
    y = np.unique(labels[keep], return_inverse=True)[1]
    X = TfidfVectorizer(min_df=min_df, ngram_range=(1, 2), sublinear_tf=True, max_features=50_000).fit_transform(
        [t for t, k in zip(texts, keep) if k])
    probs = cross_val_predict(LogisticRegression(C=C, max_iter=2000), X, y,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    flags = find_label_issues(y, probs)
    seconds = time.perf_counter() - start
    wrong = labels[keep] != gold[keep]
    return {"flags": int(flags.sum()), "auroc": float(roc_auc_score(wrong, -probs[np.arange(len(y)), y])),
            "seconds": seconds}


def datasets():
    yield from ((name, classes, texts, labels, gold) for name, classes, texts, labels, gold in _rule_noise())
    data = agnews()
    covered = data.L[:, 0] >= 0
    yield ("agnews rule", data.classes, [t for t, c in zip(data.train.texts, covered) if c], data.L[covered, 0],
           data.train.gold[covered])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(" ".join(f"{p} {version(p)}" for p in ("thresher", "cleanlab", "scikit-learn", "scipy")))
    print(f"{'dataset':12s} {'items':>6s} {'wrong':>6s}  {'method':32s} {'flags':>6s} {'AUROC':>6s} {'seconds':>8s} "
          f"{'runs':>18s} {'/ direct':>8s}")
    for name, classes, texts, labels, gold in datasets():
        times: dict[str, list[float]] = {}
        last: dict[str, dict] = {}
        for _ in range(args.repeats):
            ours = _thresher_detect(classes, texts, labels, gold)
            runs = {"thresher detect (defaults)": ours,
                    "cleanlab direct (sklearn defaults)": cleanlab_direct(texts, labels, gold),
                    "cleanlab direct, tuned C": cleanlab_direct(texts, labels, gold, C=ours["C"], min_df=ours["min_df"])}
            for method, result in runs.items():
                times.setdefault(method, []).append(result["seconds"])
                last[method] = result
        direct = statistics.median(times["cleanlab direct (sklearn defaults)"])
        for method, result in last.items():
            median = statistics.median(times[method])
            extra = f" (C {result['C']:g}, min_df {result['min_df']})" if "C" in result else ""
            print(f"{name:12s} {len(labels):6d} {(labels != gold).mean():6.3f}  {method:32s} {result['flags']:6d} "
                  f"{result['auroc']:6.3f} {median:8.2f} {' '.join(f'{t:.1f}' for t in times[method]):>18s} "
                  f"{median / direct:7.2f}x{extra}")
    print(json.dumps({"note": "AUROC of the label-quality score at finding labels that differ from gold"}))


if __name__ == "__main__":
    main()
