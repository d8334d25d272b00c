"""Benchmark: STORM and loss-based reweighting against plain training, as in the STORM paper.

Youtube (WRENCH split: train 1,586 / valid 120 / test 250, accuracy) and SMS (ImplyLoss split:
train 4,502 / valid 500 / test 500, spam F1), TF-IDF features (unigrams, sublinear tf, fitted on
all texts of the dataset, no labels) and a linear model, symmetric label noise injected into the
training labels only. Every method trains 10 epochs with batch 32 and Adam lr 5e-2 and keeps the
epoch with the best clean-validation score (the paper's early stopping); the table reports the
test score of that epoch, mean ± std over seeds.

Methods: ``uniform`` (no rescaling), ``storm``, ``storm_loss`` (loss-only rescaler features),
``storm_shared`` (no class separation), the loss rules ``linupper`` / ``quadratic`` /
``extremes``, and, with ``--reset``, ``uniform``, ``storm`` and ``storm_loss`` again with the Adam moments reset
at every step as the reference code does (see benchmarks/README.md for why that matters).
Weight quality: AUROC of (1 - final weight) at finding the flipped labels, and mean weight of
flipped vs kept labels. Time: seconds per epoch relative to ``uniform`` in the same run.

    .venv/bin/python -m benchmarks.meta_rescaling --datasets sms youtube --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from sklearn.metrics import f1_score, roc_auc_score

from benchmarks.noise_detection import SHARED, sms
from thresher.features import TfidfConfig, tfidf_features
from thresher.reweighting.rescale import Reweighter

NOISE = [0.0, 0.1, 0.2, 0.3, 0.4]
# Without the _reset suffix: Adam's moments carried across steps (textbook Adam).
METHODS: dict[str, dict] = {
    "uniform": {"strategy": "uniform", "optimizer": "adam"},
    "storm": {"strategy": "storm", "optimizer": "adam"},
    "storm_loss": {"strategy": "storm", "rescaler_features": "loss", "optimizer": "adam"},
    "storm_shared": {"strategy": "storm", "class_separation": False, "optimizer": "adam"},
    "linupper": {"strategy": "linupper", "optimizer": "adam"},
    "quadratic": {"strategy": "quadratic", "optimizer": "adam"},
    "extremes": {"strategy": "extremes", "optimizer": "adam"},
}
RESET = {"uniform_reset": {"strategy": "uniform", "optimizer": "adam_reset"},
         "storm_reset": {"strategy": "storm", "optimizer": "adam_reset"},
         "storm_loss_reset": {"strategy": "storm", "optimizer": "adam_reset", "rescaler_features": "loss"}}


def load(name: str) -> dict[str, tuple[list[str], np.ndarray]]:
    """{split: (texts, gold labels)} for train, valid and test."""
    if name == "youtube":
        out = {}
        for split in ("train", "valid", "test"):
            rows = json.loads((SHARED / "wrench_youtube" / f"{split}.json").read_text())
            out[split] = ([r["data"]["text"] for r in rows.values()], np.array([r["label"] for r in rows.values()]))
        return out
    if name == "sms":
        return {split: sms(split) for split in ("train", "valid", "test")}
    raise ValueError(name)


def run(name: str, seeds: list[int], methods: dict[str, dict], epochs: int, console: Console,
        noise: list[float] = NOISE, hidden: int = 0) -> list[dict]:
    data = load(name)
    texts = data["train"][0] + data["valid"][0] + data["test"][0]
    X = tfidf_features(texts, TfidfConfig(ngram_max=1))
    n_tr, n_va = len(data["train"][1]), len(data["valid"][1])
    X_tr, X_va, X_te = X[:n_tr], X[n_tr:n_tr + n_va], X[n_tr + n_va:]
    gold, y_va, y_te = data["train"][1], data["valid"][1], data["test"][1]
    metric = "f1" if name == "sms" else "accuracy"
    rows = []
    for rate in noise:
        for seed in seeds:
            rng = np.random.default_rng(1000 + seed)
            flipped = rng.random(len(gold)) < rate
            noisy = np.where(flipped, 1 - gold, gold)
            for method, params in methods.items():
                started = time.perf_counter()
                model = Reweighter(**params, epochs=epochs, hidden=hidden, random_state=seed).fit(
                    X_tr, noisy, eval_set=(X_va, y_va), eval_metric=metric)
                seconds = time.perf_counter() - started
                pred = model.predict(X_te)
                score = f1_score(y_te, pred) if metric == "f1" else float((pred == y_te).mean())
                w = model.weights_
                row = {"dataset": name, "noise": rate, "seed": seed, "method": method, "hidden": hidden, "score": float(score),
                       "best_epoch": model.best_epoch_, "epoch_seconds": float(np.mean([e["seconds"] for e in model.epoch_log_])),
                       "seconds": seconds,
                       "auroc": float(roc_auc_score(flipped, -w)) if 0 < flipped.sum() < len(w) else float("nan"),
                       "w_flipped": float(w[flipped].mean()) if flipped.any() else float("nan"),
                       "w_kept": float(w[~flipped].mean())}
                rows.append(row)
                console.print(f"{name} noise={rate:.0%} seed={seed} {method:13s} {metric}={score:.3f} "
                              f"epoch={model.best_epoch_} auroc={row['auroc']:.3f} {seconds:.1f}s", highlight=False)
    return rows


def summarise(rows: list[dict], console: Console) -> str:
    """Mean ± std tables (score, then weight AUROC and time ratio), printed and returned as markdown."""
    markdown = []
    for name in sorted({r["dataset"] for r in rows}):
        sub = [r for r in rows if r["dataset"] == name]
        methods = list(dict.fromkeys(r["method"] for r in sub))
        metric = "F1 (spam)" if name == "sms" else "accuracy"
        table = Table(title=f"{name}: test {metric} at the best validation epoch, mean ± std over seeds")
        table.add_column("noise")
        for m in methods:
            table.add_column(m, justify="right")
        md = [f"**{name}** — test {metric} ×100, mean ± std over {len({r['seed'] for r in sub})} seeds",
              "", "| noise | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for rate in sorted({r["noise"] for r in sub}):
            cells = []
            for m in methods:
                s = np.array([r["score"] for r in sub if r["noise"] == rate and r["method"] == m]) * 100
                cells.append(f"{s.mean():.1f} ± {s.std():.1f}" if len(s) else "")
            table.add_row(f"{rate:.0%}", *cells)
            md.append(f"| {rate:.0%} | " + " | ".join(cells) + " |")
        console.print(table)
        plain = [r["epoch_seconds"] for r in sub if r["method"] in ("uniform", "uniform_reset")]
        base = np.mean(plain) if plain else float("nan")
        aux = Table(title=f"{name}: weights and time (noise > 0)")
        for col in ("method", "weight AUROC", "mean w flipped", "mean w kept", "s/epoch", "× uniform"):
            aux.add_column(col, justify="right")
        md += ["", "| method | weight AUROC | mean w flipped | mean w kept | s/epoch | × uniform |", "|---|---|---|---|---|---|"]
        for m in methods:
            noisy = [r for r in sub if r["method"] == m and r["noise"] > 0]
            cells = [f"{np.nanmean([r['auroc'] for r in noisy]):.3f}", f"{np.nanmean([r['w_flipped'] for r in noisy]):.3f}",
                     f"{np.mean([r['w_kept'] for r in noisy]):.3f}",
                     f"{np.mean([r['epoch_seconds'] for r in sub if r['method'] == m]):.3f}",
                     f"{np.mean([r['epoch_seconds'] for r in sub if r['method'] == m]) / base:.1f}"]
            aux.add_row(m, *cells)
            md.append(f"| {m} | " + " | ".join(cells) + " |")
        console.print(aux)
        markdown += md + [""]
    return "\n".join(markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sms", "youtube"], choices=["sms", "youtube"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--noise", type=float, nargs="+", default=NOISE)
    parser.add_argument("--hidden", type=int, default=0, help="0: linear model (the paper); N: MLP with N hidden units")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS) + list(RESET))
    parser.add_argument("--reset", action="store_true", help="also run uniform and storm with per-step Adam resets")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: run datasets side by side)")
    parser.add_argument("--out", type=Path, default=None, help="also write every row as JSON lines")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables as markdown")
    parser.add_argument("--from-jsonl", type=Path, nargs="*", default=None, help="only summarise earlier --out files")
    args = parser.parse_args()
    console = Console(width=200)
    if args.from_jsonl:
        rows = [json.loads(line) for path in args.from_jsonl for line in path.read_text().splitlines()]
    else:
        torch.set_num_threads(args.threads)
        methods = {m: METHODS.get(m) or RESET[m] for m in args.methods}
        if args.reset:
            methods.update(RESET)
        rows = []
        for name in args.datasets:
            rows += run(name, args.seeds, methods, args.epochs, console, args.noise, args.hidden)
        if args.out:
            args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = summarise(rows, console)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
