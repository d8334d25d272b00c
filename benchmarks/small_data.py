"""Benchmark: a first run on small data, wall time of everything, against the same steps by hand.

5,000 AG News rows (dev, drawn with seed 0) are written to JSONL without their labels, as a new user
with unlabelled data has them. Three ways, each a fresh process (imports, start-up and all included):

  cli        ``thresher init DIR --classes World,Sports,Business,Sci/Tech`` then ``thresher run`` on the
             config it wrote (a temporary Prefect server included)
  api        the same config through the Python API: ``thresher.Pipeline(config).run()``
  by hand    the same steps with the libraries: the zero-shot LF as a Snorkel LF over the same static
             encoder (cosine to one sentence per class, the same margin), Snorkel's PandasLFApplier and
             MajorityLabelVoter, TF-IDF + 5-fold logistic regression (scikit-learn defaults) +
             cleanlab's ``find_label_issues``, the kept rows written to Parquet

Runs are interleaved (cli, api, by hand, repeated); the medians are shown. ``--busy 2`` runs two
CPU-bound processes beside them the whole time (a laptop doing other things). The static encoder is
distilled once before timing (``thresher init`` does it; the by-hand script reuses it).

    .venv/bin/python -m benchmarks.small_data                 # idle
    .venv/bin/python -m benchmarks.small_data --busy 2        # two busy cores beside it
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from benchmarks.shared import SHARED

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ["World", "Sports", "Business", "Sci/Tech"]
BIN = Path(sys.executable).parent

BY_HAND = r'''
import sys, time, numpy as np, pandas as pd
from snorkel.labeling import PandasLFApplier, labeling_function
from snorkel.labeling.model import MajorityLabelVoter
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from cleanlab.filter import find_label_issues
from thresher.features.static import StaticEncoder

rows, out, margin = sys.argv[1], sys.argv[2], float(sys.argv[3])
classes = ["World", "Sports", "Business", "Sci/Tech"]
frame = pd.read_json(rows, lines=True)
encoder = StaticEncoder()
unit = lambda v: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
statements = unit(encoder.encode([f"This text is about {c}." for c in classes]))
vectors = dict(zip(frame.text, unit(encoder.encode(list(frame.text)))))

@labeling_function()
def zero_shot(x):
    similarity = statements @ vectors[x.text]
    best, second = np.argsort(-similarity)[:2]
    return int(best) if similarity[best] - similarity[second] >= margin else -1

L = PandasLFApplier([zero_shot]).apply(frame, progress_bar=False)
labels = MajorityLabelVoter(cardinality=4).predict(L, tie_break_policy="abstain")
covered = frame[labels >= 0].assign(label=labels[labels >= 0])
X = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(covered.text)
probs = cross_val_predict(LogisticRegression(max_iter=2000), X, covered.label, cv=5, method="predict_proba")
issues = find_label_issues(covered.label.to_numpy(), probs)
covered[~issues].to_parquet(out)
print(f"by hand: {len(covered)} covered, {int(issues.sum())} flagged, {int((~issues).sum())} written")
'''

API = r'''
import sys, time
started = time.perf_counter()
import thresher
result = thresher.Pipeline(sys.argv[1], db=sys.argv[2], out_dir=sys.argv[3]).run()
print("api:", {k: v.get("rows", v.get("n_issues", "")) for k, v in result.summaries.items()})
'''


def busy() -> None:  # pragma: no cover - a CPU hog
    while True:
        pass


def write_rows(path: Path, rows: int) -> None:
    dev = json.loads((SHARED / "cosine_agnews_devtest" / "dev_data.json").read_text())
    chosen = np.random.default_rng(0).choice(len(dev), rows, replace=False)
    path.write_text("".join(json.dumps({"text": dev[i]["text"]}) + "\n" for i in chosen))


def timed(command: list[str], **kwargs) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run beside it")
    args = parser.parse_args()
    print(" ".join(f"{p} {version(p)}" for p in ("thresher", "prefect", "snorkel", "cleanlab", "scikit-learn",
                                                 "duckdb")), f"cores {os.cpu_count()}, busy {args.busy}")
    from thresher.features.static import StaticEncoder
    from thresher.pipeline.starter import ZERO_SHOT_MARGIN

    StaticEncoder().setup()
    hogs = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.busy)]
    for hog in hogs:
        hog.start()
    times: dict[str, list[float]] = {"cli: init + run": [], "api: Pipeline.run": [], "by hand": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "rows.jsonl"
            write_rows(data, args.rows)
            for repeat in range(args.repeats):
                project = Path(tmp) / f"p{repeat}"
                shutil.rmtree(project, ignore_errors=True)
                project.mkdir()
                started = time.perf_counter()
                timed([str(BIN / "thresher"), "init", str(project), "--data", str(data), "--classes", ",".join(AG_NEWS),
                       "--no-progress"])
                _, line = timed([str(BIN / "thresher"), "run", str(project / "thresher.yaml"), "--no-progress"])
                times["cli: init + run"].append(time.perf_counter() - started)
                seconds, api_line = timed([sys.executable, "-c", API, str(project / "thresher.yaml"),
                                           str(project / "api.duckdb"), str(project / "api-export")])
                times["api: Pipeline.run"].append(seconds)
                seconds, hand_line = timed([sys.executable, "-c", BY_HAND, str(data), str(project / "hand.parquet"),
                                            str(ZERO_SHOT_MARGIN)])
                times["by hand"].append(seconds)
                print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()))
                print(f"  {api_line}\n  {hand_line}")
    finally:
        for hog in hogs:
            hog.terminate()
    hand = statistics.median(times["by hand"])
    print(f"\n{args.rows:,} rows, medians of {args.repeats} (busy processes beside it: {args.busy}):")
    print(f"{'':22s} {'seconds':>8s} {'runs':>24s} {'/ by hand':>10s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:22s} {median:8.1f} {' '.join(f'{v:.1f}' for v in values):>24s} {median / hand:9.2f}x")


if __name__ == "__main__":
    main()
