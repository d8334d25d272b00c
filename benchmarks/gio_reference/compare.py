"""Benchmark: thresher's GIO against the reference package ``grad-info-opt`` 0.1.2, same inputs.

Embeddings: static MiniLM (256 dims) of a 2,000-text pool drawn from the selection benchmark's
mixed pool (AG News, IMDB, SMS, TREC) and of 200 TREC questions as the target. Both implementations
start from 20 uniform points (k = 5, 50 gradient steps per point, lr 0.01, scale "auto") and pick a
fixed number of points; the reference runs in its own environment (``setup.sh``: JAX, PySpark,
Java) through ``worker.py``. Reported: fit() wall time (the reference's Spark start-up apart), the
KL of each selection to the target by one estimator (the package's, without the uniform start
points), the KL of a random selection of the same size, the overlap of the two selections and
their share of TREC items.

    bash benchmarks/gio_reference/setup.sh .venv-gio
    .venv/bin/python -m benchmarks.gio_reference.compare --reference-python .venv-gio/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.selection import load
from thresher.features import StaticEncoder
from thresher.reweighting.select import GIO, knn_kl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", type=Path, default=Path(".venv-gio/bin/python"))
    parser.add_argument("--points", type=int, default=40)
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--target", type=int, default=200)
    parser.add_argument("--v-init", nargs="+", default=["mean", "jump"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.reference_python.exists():
        raise SystemExit(f"No reference environment at {args.reference_python}: run benchmarks/gio_reference/setup.sh")
    console = Console(width=200)
    rng = np.random.default_rng(args.seed)
    data = load()
    pool_rows = [(t, dom) for dom in data for t, _ in data[dom]["pool"]]
    pool_rows = [pool_rows[i] for i in rng.permutation(len(pool_rows))[: args.pool]]
    target_texts = [t for t, _ in data["trec"]["target"]][: args.target]
    encoder = StaticEncoder()
    pool = encoder.encode([t for t, _ in pool_rows]).astype(np.float64)
    target = encoder.encode(target_texts).astype(np.float64)
    is_trec = np.array([d == "trec" for _, d in pool_rows])
    worker = Path(__file__).with_name("worker.py")
    table = Table(title=f"GIO vs grad-info-opt 0.1.2: {args.points} points from a pool of {len(pool)} "
                        f"(d = {pool.shape[1]}), target {len(target)} TREC questions")
    for col in ("v_init", "reference s", "thresher s", "speed-up", "KL reference", "KL thresher", "KL random",
                "overlap", "TREC share ref / thr"):
        table.add_column(col, justify="right")
    random_kl = np.mean([knn_kl(target, pool[rng.permutation(len(pool))[: args.points]]) for _ in range(10)])
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", target=target, pool=pool)
        for v_init in args.v_init:
            started = time.perf_counter()
            mine = GIO(v_init=v_init, stop="never", max_points=args.points, random_state=args.seed).fit(pool, None, target, None)
            my_seconds = time.perf_counter() - started
            out = Path(tmp) / f"{v_init}.json"
            env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "JAX_PLATFORMS": "cpu"}
            subprocess.run([str(args.reference_python), str(worker), str(Path(tmp) / "in.npz"), str(out),
                            "--points", str(args.points), "--v-init", v_init, "--seed", str(args.seed)],
                           check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ref = json.loads(out.read_text())
            theirs = np.array(ref["selected"])
            if len(set(theirs.tolist())) != len(theirs) or ref["max_match_distance"] > 1e-2:
                raise RuntimeError(f"The reference's points do not map back onto distinct pool rows: {ref['max_match_distance']}")
            ours = mine.selected_
            row = [v_init, f"{ref['fit_seconds']:.1f}", f"{my_seconds:.2f}", f"{ref['fit_seconds'] / my_seconds:.0f}x",
                   f"{knn_kl(target, pool[theirs]):.2f}", f"{knn_kl(target, pool[ours]):.2f}", f"{random_kl:.2f}",
                   f"{len(set(theirs.tolist()) & set(ours.tolist())) / args.points:.2f}",
                   f"{is_trec[theirs].mean():.2f} / {is_trec[ours].mean():.2f}"]
            console.print(" ".join(row), f"(reference Spark start-up {ref['setup_seconds']:.1f} s, "
                          f"{len(theirs)} points)", highlight=False)
            table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
