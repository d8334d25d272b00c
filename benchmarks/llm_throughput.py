"""Benchmark: prompted-LF throughput against a local OpenAI-compatible server, and cached re-runs.

The server (thresher.testing.openai_server) runs in its own process on 127.0.0.1 and answers every
request after a fixed latency (default 50 ms). For each concurrency N, thresher sends distinct
prompts (a fresh template per N, so nothing is cached) and the rate is compared with the ideal
N / latency. Then the cached re-run: every prompt of a larger item set is answered once (latency 0),
and the same labeling pass is timed again, now with zero calls. Items are generated from the real
texts of the shared datasets with a numeric suffix (synthetic scale, real text). Client and server
share the same 2 cores, so the server's CPU counts against the client here. With ``--dask`` each
level runs again with the prompts sent in chunks from a 2-worker Dask LocalCluster (the same total
concurrency, shared by the chunks).

    .venv/bin/python -m benchmarks.llm_throughput [--latency 0.05] [--requests 4000] [--cached-items 50000] [--dask]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.labeling import insert_generated_items, real_texts
from thresher.flows.dask import dask_map
from thresher.core.chunking import Chunking
from thresher.labeling.config import LabelingConfig
from thresher.labeling.llm.apply import apply_prompted_lfs
from thresher.labeling.llm.factory import build_backend
from thresher.storage.schema import connect
from thresher.pipeline.config import DaskConfig


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "thresher.testing.openai_server", "--latency", str(latency)],
                               stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}/v1"


def prompted(base_url: str, concurrency: int, tag: str) -> LabelingConfig:
    lf = {"kind": "prompt", "name": f"p_{tag}", "template": "{text}\n\nDoes this ask to subscribe? (" + tag + ")",
          "answers": {"yes": 1, "no": "abstain"}}
    return LabelingConfig(classes=["HAM", "SPAM"], lfs=[lf], model={"model": "majority"},
                          llm={"backend": "openai", "base_url": base_url, "model": "bench", "concurrency": concurrency})


def timed_pass(con, cfg: LabelingConfig, n_items: int, chunking: Chunking | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    run = apply_prompted_lfs(con, cfg.build_prompted_lfs(), build_backend(cfg.llm), through_seq=n_items, run_id="bench",
                             chunking=chunking)
    return time.perf_counter() - started, run.sent


def throughput_rows(con, base_url: str, args: argparse.Namespace, mode: str,
                    chunking: Chunking | None = None) -> list[list[str]]:
    rows = []
    for concurrency in args.concurrency:
        cfg = prompted(base_url, concurrency, f"{mode.split()[0]}{concurrency}")
        seconds, sent = timed_pass(con, cfg, args.requests, chunking)
        ideal = concurrency / args.latency
        rows.append([mode, str(concurrency), f"{sent:,}", f"{seconds:.2f}", f"{sent / seconds:,.0f}", f"{ideal:,.0f}",
                     f"{sent / seconds / ideal:.1%}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--requests", type=int, default=4000, help="distinct prompts per concurrency level")
    parser.add_argument("--cached-items", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dask", action="store_true", help="also send in chunks from a 2-worker Dask LocalCluster")
    args = parser.parse_args()
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    console = Console(width=140)
    pool = real_texts()
    rng = np.random.default_rng(args.seed)
    n = max(args.requests, args.cached_items)
    texts = [f"{pool[p]} {i}" for i, p in enumerate(rng.integers(0, len(pool), n))]
    console.print(f"{n:,} items generated from {len(pool):,} real texts (numeric suffix: every prompt distinct)")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        insert_generated_items(con, texts, [f"bench:{i:09d}" for i in range(n)])
        server, base_url = start_server(args.latency)
        try:
            rows += throughput_rows(con, base_url, args, "one process")
            if args.dask:
                with dask_map(DaskConfig(n_workers=2)) as (map_chunks, slots):
                    chunking = Chunking(map_chunks, rows=args.requests, directory=Path(tmp), slots=slots)
                    timed_pass(con, prompted(base_url, 8, "warmup"), 100, chunking)  # workers import thresher once
                    rows += throughput_rows(con, base_url, args, "dask 2 workers", chunking)
        finally:
            server.kill()
        table = Table(title=f"Requests per second at {1000 * args.latency:.0f} ms server latency (whole labeling pass: "
                            "render, cache lookup, send, store, verbalise)")
        for column in ("mode", "concurrency N", "prompts sent", "seconds", "requests/s", "ideal N/latency", "of ideal"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)

        server, base_url = start_server(0.0)
        try:
            cfg = prompted(base_url, 64, "cached")
            fill_s, fill_sent = timed_pass(con, cfg, args.cached_items)
            rerun_s, rerun_sent = timed_pass(con, cfg, args.cached_items)
        finally:
            server.kill()
        con.close()
    console.print(f"Cached re-run: {args.cached_items:,} items, first pass sent {fill_sent:,} prompts in {fill_s:.1f} s "
                  f"(latency 0: {fill_sent / fill_s:,.0f} requests/s); re-run sent {rerun_sent} in {rerun_s:.2f} s = "
                  f"[bold]{args.cached_items / rerun_s:,.0f} items/s[/]", highlight=False)


if __name__ == "__main__":
    main()
