"""Benchmark: the whole pipeline on 1M rows: ingest -> SQL LFs -> LabelModel -> cleanlab + small-loss on TF-IDF -> export.

The rows are generated from the real texts of the shared datasets (YouTube, SMS, AG News, IMDB,
TREC: texts drawn with replacement, each copy given a numeric suffix), written to one Parquet file
that the pipeline ingests like any source; YouTube and SMS rows keep their gold spam/ham label. The
LFs are benchmarks/labeling.py's 20 keyword/regex LFs. The pipeline runs as the real Prefect flow
(`pipeline_flow`, a temporary local Prefect server); per-stage wall times come from the `runs` table,
peak RSS from the process (the flow runs in it).

    .venv/bin/python -m benchmarks.pipeline --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from rich.console import Console
from rich.table import Table

from benchmarks.labeling import LF_SPECS, SHARED

GOAL_SECONDS, GOAL_GIB = 15 * 60, 4.0


def labelled_pool() -> tuple[list[str], list[int | None]]:
    """Real texts, with gold spam (1) / ham (0) where the dataset has it."""
    texts: list[str] = []
    gold: list[int | None] = []
    for split in ("train", "valid", "test"):
        for entry in json.loads((SHARED / "wrench_youtube" / f"{split}.json").read_text()).values():
            texts.append(entry["data"]["text"])
            gold.append(int(entry["label"]))
    with (SHARED / "sms_spam_implyloss" / "train.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            texts.append(row["v2"])
            gold.append(1 if row["v1"] == "spam" else 0)
    for folder in ("cosine_agnews_devtest", "cosine_imdb_devtest"):
        for entry in json.loads((SHARED / folder / "dev_data.json").read_text()):
            texts.append(entry["text"])
            gold.append(None)
    return texts, gold


def lf_config() -> list[dict]:
    lfs = []
    for name, kind, label, spec in LF_SPECS:
        if kind == "keyword":
            lfs.append({"kind": "keyword", "name": name, "label": label, "terms": spec})
        else:
            lfs.append({"kind": "regex", "name": name, "label": label, "pattern": spec, "case_sensitive": False})
    return lfs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--dask", action="store_true",
                        help="run a second time with LF application on a 2-worker Dask LocalCluster, and compare")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    console = Console(width=140)
    pool, pool_gold = labelled_pool()
    rng = np.random.default_rng(args.seed)
    picks = rng.integers(0, len(pool), args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        source = work / "rows.parquet"
        pq.write_table(pa.table({
            "id": [f"row{i:08d}" for i in range(args.rows)],
            "text": [f"{pool[p]} {i}" for i, p in enumerate(picks)],
            "gold": pa.array([pool_gold[p] for p in picks], pa.int64()),
        }), source)
        console.print(f"{args.rows:,} rows generated from {len(pool):,} real texts -> {source} "
                      f"({source.stat().st_size / 2**20:.0f} MiB)")
        config = {
            "project": "pipeline-benchmark", "db": str(work / "bench.duckdb"), "classes": ["ham", "spam"],
            "sources": [{"path": str(source), "dataset": "bench", "split": "train",
                         "columns": {"text": "text", "id": "id", "gold": "gold"}}],
            "labeling": {"lfs": lf_config(), "model": {"model": "label_model"}},
            "detect": {"features": {"encoder": "tfidf"}, "n_folds": 3,
                       "detectors": ["confident_learning", "small_loss"]},
            "export": {"out_dir": str(work / "export"), "rows_per_shard": 100_000},
        }
        from thresher.flows import pipeline_flow
        from thresher.storage.schema import connect

        results = {}
        for mode in ("single process", "dask LocalCluster (2 workers)") if args.dask else ("single process",):
            run_dir = work / mode.split()[0]
            run_dir.mkdir()
            run_config = {**config, "db": str(run_dir / "bench.duckdb"),
                          "export": {**config["export"], "out_dir": str(run_dir / "export")}}
            if mode != "single process":
                run_config["dask"] = {"n_workers": 2, "chunk_rows": 250_000, "chunk_dir": str(run_dir)}
            config_path = run_dir / "thresher.yaml"
            config_path.write_text(yaml.safe_dump(run_config))
            started = time.perf_counter()
            summary = pipeline_flow(str(config_path))
            total = time.perf_counter() - started
            con = connect(run_config["db"], read_only=True)
            stages = con.execute("SELECT stage, epoch(ended_at - started_at) FROM runs WHERE run_id = ? "
                                 "ORDER BY started_at", [summary["run_id"]]).fetchall()
            votes = con.execute("SELECT count(*), sum(hash(item_id, lf, vote)) FROM votes").fetchall()[0]
            con.close()
            results[mode] = (stages, total, summary, votes)
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    table = Table(title=f"Pipeline on {args.rows:,} rows (2 cores; Prefect flow, temporary local server), seconds")
    table.add_column("stage")
    for mode in results:
        table.add_column(mode)
    stage_names = [stage for stage, _ in next(iter(results.values()))[0]]
    for stage in stage_names:
        table.add_row(stage, *(f"{dict(r[0])[stage]:.1f}" for r in results.values()))
    table.add_row("all stages", *(f"{sum(s for _, s in r[0]):.1f}" for r in results.values()))
    table.add_row("whole flow (with Prefect start-up)", *(f"{r[1]:.1f}" for r in results.values()))
    console.print(table)
    stages, total, summary, votes = results["single process"]
    label = summary["label"]
    console.print(f"label: coverage {label['coverage']:.3f}, {label['n_votes']:,} votes; detect: "
                  f"{summary['detect'].get('n_issues')} issues of {summary['detect'].get('n_checked')}; export: "
                  f"{summary['export']['rows']:,} rows in {summary['export']['shards']} shards")
    if args.dask:
        same = len({r[3] for r in results.values()}) == 1
        label_times = [dict(r[0])["label"] for r in results.values()]
        console.print(f"votes identical in both runs: {same}; label stage speed-up with Dask: "
                      f"{label_times[0] / label_times[1]:.2f}x")
    console.print(f"peak RSS {peak_gib:.2f} GiB (goal <= {GOAL_GIB}; the process's peak over all runs); wall "
                  f"{total / 60:.1f} min (goal <= {GOAL_SECONDS / 60:.0f})")


if __name__ == "__main__":
    main()
