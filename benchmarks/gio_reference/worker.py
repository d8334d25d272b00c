"""Runs inside the reference environment only (grad-info-opt 0.1.2 + JAX + PySpark + Java), never
inside thresher's: reads target and pool embeddings from an .npz, runs the package's GIOKL.fit,
and writes the chosen pool rows, its own KL path and the wall time of fit() as JSON.

    python worker.py IN.npz OUT.json --points 40 --v-init mean --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--points", type=int, required=True)
    parser.add_argument("--v-init", default="mean")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import jax.numpy as jnp
    from GIO.GIOKL import GIOKL

    data = np.load(args.data)
    target, pool = data["target"].astype(np.float32), data["pool"].astype(np.float32)
    random.seed(args.seed)
    np.random.seed(args.seed)
    started = time.perf_counter()
    gio = GIOKL(uniform_low=-1, uniform_high=1, uniform_start_size=20, dim=pool.shape[1])  # starts a Spark session
    setup = time.perf_counter() - started
    started = time.perf_counter()
    # 'data_size' stops once i > int(max_data_size * len(train)), i.e. after that many + 1 points.
    W, kl_divs, _ = gio.fit(jnp.asarray(pool), jnp.asarray(target), k=args.k, max_iter=10 ** 6,
                            stop_criterion="data_size", max_data_size=(args.points - 0.5) / len(pool),
                            v_init=args.v_init)
    seconds = time.perf_counter() - started
    chosen = np.asarray(W)[20:]
    sq = (chosen ** 2).sum(1)[:, None] - 2 * chosen @ pool.T + (pool ** 2).sum(1)
    rows = sq.argmin(1)
    json.dump({"selected": rows.tolist(), "max_match_distance": float(np.sqrt(max(sq.min(1).max(), 0))),
               "kl_path": [float(k) for k in kl_divs], "fit_seconds": seconds, "setup_seconds": setup}, open(args.out, "w"))


if __name__ == "__main__":
    main()
