"""Benchmark: Snorkel's LabelModel fit with torch's default threads against thresher's (one thread), on
an idle machine and with CPU-bound processes beside it.

The fit is many tiny torch ops (an M*K x M*K problem, 100 epochs): with two or more intra-op threads
each op waits at a barrier for the others, and when other work holds the cores each wait costs a
scheduler slice. thresher fits under ``torch_threads(1)`` (core/device.py). Both fits are the same
model on the same votes; the benchmark checks that their probabilities are equal.

Votes: WRENCH youtube (10 LFs, 1,956 items), the ImplyLoss SMS rules (73 LFs, 5,502 items) and TREC
rules (68 LFs, 6 classes, 5,965 items) applied by thresher, as in benchmarks/label_models.py. Fits are interleaved, ``--repeats`` each; the median
is shown. ``--busy N`` starts N processes that spin (default: as many as cores), stopped at the end.

    .venv/bin/python -m benchmarks.label_model_threads
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from importlib.metadata import version

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.label_models import datasets as vote_matrices
from thresher.labeling.config import DenoiseConfig
from thresher.labeling.model import fit_denoiser


def snorkel_fit(L: np.ndarray, cardinality: int, config: DenoiseConfig) -> np.ndarray:
    """Snorkel's LabelModel as its docs use it, torch at its default thread count."""
    from snorkel.labeling.model import LabelModel

    model = LabelModel(cardinality=cardinality, verbose=False)
    model.fit(L, n_epochs=config.n_epochs, lr=config.lr, l2=config.l2, seed=config.seed, progress_bar=False)
    return model.predict_proba(L)


def thresher_fit(L: np.ndarray, cardinality: int, config: DenoiseConfig) -> np.ndarray:
    return fit_denoiser(L, cardinality=cardinality, config=config).predict_proba(L)


def timed(fit, L: np.ndarray, cardinality: int, config: DenoiseConfig) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    probs = fit(L, cardinality, config)
    return time.perf_counter() - start, probs


def measure(datasets: dict, repeats: int) -> dict[str, tuple[float, float, float]]:
    """Per dataset: median seconds of Snorkel's fit, of thresher's, and the largest probability gap."""
    config = DenoiseConfig(model="label_model")
    out = {}
    for name, (L, cardinality) in datasets.items():
        times: dict[str, list[float]] = {"snorkel": [], "thresher": []}
        gap = 0.0
        for _ in range(repeats):
            t_snorkel, p_snorkel = timed(snorkel_fit, L, cardinality, config)
            t_thresher, p_thresher = timed(thresher_fit, L, cardinality, config)
            times["snorkel"].append(t_snorkel)
            times["thresher"].append(t_thresher)
            gap = max(gap, float(np.abs(p_snorkel - p_thresher).max()))
        out[name] = (statistics.median(times["snorkel"]), statistics.median(times["thresher"]), gap)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="CPU-bound processes beside the busy run")
    args = parser.parse_args()
    import torch

    datasets = {f"{name} ({L.shape[1]} LFs, {len(L):,} items)": (L, K) for name, K, L, _ in vote_matrices()
                if name in ("youtube", "sms rules", "trec rules")}
    rows = []
    for condition in ("idle", f"{args.busy} busy cores"):
        spinners = [] if condition == "idle" else [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        try:
            time.sleep(0 if condition == "idle" else 2)
            for name, (snorkel_s, thresher_s, gap) in measure(datasets, args.repeats).items():
                rows.append([condition, name, f"{snorkel_s:.2f}", f"{thresher_s:.2f}", f"{snorkel_s / thresher_s:.1f}x",
                             f"{gap:.1e}"])
        finally:
            for spinner in spinners:
                spinner.kill()
    table = Table(title=f"LabelModel fit + predict_proba, median of {args.repeats} (seconds)")
    for column in ("machine", "votes", "Snorkel (default threads)", "thresher (1 thread)", "speed-up", "max |p diff|"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(f"{os.cpu_count()} cores; torch {torch.__version__} (default {torch.get_num_threads()} threads), "
                  f"snorkel {version('snorkel')}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
