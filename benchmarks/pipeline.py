"""Benchmark: the whole pipeline at 1M-10M rows: ingest -> 20 SQL LFs -> LabelModel -> cleanlab + small-loss -> export.

Rows are generated from the real texts of the shared datasets (YouTube, SMS, AG News, IMDB): each
row is a pool text drawn with replacement, kept as is (a real duplicate text) or varied by a few
words swapped in from other pool texts, so texts repeat and detection has real work; YouTube and
SMS rows keep their gold spam/ham label. About 0.5 % of rows repeat an earlier row exactly (same id,
same content: ingest's ``duplicate_row``) and 0.05 % reuse an earlier id with other content
(``conflicting_id``). The LFs are benchmarks/labeling.py's 20 keyword/regex LFs.

Each size runs in its own child process (``thresher.Pipeline``, stage by stage, the same stages as
``thresher run``); a sampler thread in the child records each stage's peak memory (PSS of the child and its worker processes) and its wall time.
``--flow`` runs the real Prefect ``pipeline_flow`` instead (per-stage times from the ``runs`` table,
one peak for the whole process). Several ``--rows`` print a growth table.

    .venv/bin/python -m benchmarks.pipeline --rows 1000000 10000000
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from rich.console import Console
from rich.table import Table

from benchmarks.labeling import LF_SPECS, SHARED

GOALS = {1_000_000: (2 * 60, 2.0), 10_000_000: (15 * 60, 4.0)}  # rows -> (seconds, GiB)
STAGES = ("ingest", "label", "detect", "export")


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


def generate(path: Path, rows: int, seed: int, *, chunk: int = 500_000) -> dict[str, int]:
    """Write ``rows`` generated rows to one Parquet file, chunk by chunk; counts of what was planted."""
    pool, pool_gold = labelled_pool()
    words = [text.split() for text in pool]
    vocabulary = [w for ws in words for w in ws]
    rng = np.random.default_rng(seed)
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("gold", pa.int64())])
    planted = {"exact_texts": 0, "duplicate_rows": 0, "conflicting_ids": 0}
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            picks = rng.integers(0, len(pool), n)
            exact = rng.random(n) < 0.3
            swaps = rng.integers(1, 4, n)
            donors = rng.integers(0, len(vocabulary), (n, 3))
            texts = []
            for j in range(n):
                p = picks[j]
                if exact[j] or not words[p]:
                    texts.append(pool[p])
                    continue
                ws = list(words[p])
                for s in range(swaps[j]):
                    ws[(p * 7 + s * 13 + j) % len(ws)] = vocabulary[donors[j, s]]
                texts.append(" ".join(ws))
            ids = [f"row{start + j:09d}" for j in range(n)]
            gold = [pool_gold[p] for p in picks]
            # Rows that repeat an earlier row of this chunk: exactly, or the id with other content.
            repeat = np.flatnonzero(rng.random(n) < 0.0055)[1:]
            originals = np.setdiff1d(np.arange(n), repeat)  # a repeat copies a row that is not one itself
            for k, j in enumerate(repeat):
                earlier = int(originals[rng.integers(0, np.searchsorted(originals, j))])
                ids[j] = ids[earlier]
                if k % 11 == 0:
                    planted["conflicting_ids"] += 1
                else:
                    texts[j], gold[j] = texts[earlier], gold[earlier]
                    planted["duplicate_rows"] += 1
            planted["exact_texts"] += int(exact.sum())
            writer.write_table(pa.table({"id": ids, "text": texts, "gold": pa.array(gold, pa.int64())}, schema))
    return planted


def bench_config(work: Path, source: Path, *, dask: bool) -> dict:
    config = {
        "project": "pipeline-benchmark", "db": str(work / "bench.duckdb"), "classes": ["ham", "spam"],
        "sources": [{"path": str(source), "dataset": "bench", "split": "train",
                     "columns": {"text": "text", "id": "id", "gold": "gold"}}],
        "labeling": {"lfs": lf_config(), "model": {"model": "label_model"}},
        "detect": {"features": {"encoder": "tfidf"}, "n_folds": 3,
                   "detectors": ["confident_learning", "small_loss"]},
        "export": {"out_dir": str(work / "export"), "rows_per_shard": 1_000_000},
    }
    if dask:
        config["dask"] = {"n_workers": 2, "chunk_rows": 250_000, "chunk_dir": str(work)}
    return config


class PeakRSS:
    """Samples the memory of this process and its worker processes (detect's local pool) every 0.1 s:
    the sum of their proportional set sizes (PSS: a page shared by k processes counts 1/k in each, so
    joblib's memory-mapped arrays are not counted twice). ``take()`` returns the peak since the last take."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self._peak = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._sample, daemon=True).start()

    def _pss(self) -> int:
        total = 0
        import psutil

        for process in [self._me, *self._me.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker that exited between listing and reading
                total += process.memory_full_info().pss
        return total

    def _sample(self) -> None:
        while True:
            pss = self._pss()
            with self._lock:
                self._peak = max(self._peak, pss)
            time.sleep(0.1)

    def take(self) -> float:
        with self._lock:
            peak, self._peak = max(self._peak, self._pss()), 0
        return peak / 2**30


def child(config_path: Path, flow: bool) -> None:
    """Run the pipeline in this process and print one JSON line: per-stage seconds and peak GiB."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    config = yaml.safe_load(config_path.read_text())
    rss = PeakRSS()
    stages: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    if flow:
        from thresher.flows import pipeline_flow
        from thresher.storage.schema import connect

        summary = pipeline_flow(str(config_path))
        con = connect(config["db"], read_only=True)
        for stage, seconds in con.execute("SELECT stage, epoch(ended_at - started_at) FROM runs WHERE run_id = ? "
                                          "ORDER BY started_at", [summary["run_id"]]).fetchall():
            stages[stage] = {"seconds": seconds}
        con.close()
        summaries = {name: summary[name] for name in STAGES}
    else:
        import thresher

        rss.take()
        pipe = thresher.Pipeline(config)
        summaries = {}
        for name in STAGES:
            begun = time.perf_counter()
            summaries[name] = pipe.run_stage(name, force=True)
            stages[name] = {"seconds": time.perf_counter() - begun, "peak_gib": rss.take()}
    from thresher.storage.schema import connect

    con = connect(config["db"], read_only=True)
    votes = con.execute("SELECT count(*), sum(hash(item_id, lf, vote)) FROM votes").fetchone()
    flags = con.execute("SELECT detector, count(*) FILTER (is_issue), sum(hash(item_id, is_issue)) FROM noise_scores "
                        "GROUP BY detector ORDER BY detector").fetchall()
    con.close()
    print(json.dumps({
        "stages": stages, "wall": time.perf_counter() - started,
        "peak_gib": max([rss.take()] + [numbers.get("peak_gib", 0.0) for numbers in stages.values()]),
        "votes": [votes[0], str(votes[1])], "flags": [[d, n, str(h)] for d, n, h in flags],
        "ingest": {k: summaries["ingest"].get(k) for k in ("rows", "new_items", "rejected")},
        "label": {k: summaries["label"].get(k) for k in ("coverage", "n_votes", "accuracy")},
        "detect": {k: summaries["detect"].get(k) for k in ("n_checked", "n_issues", "gold")},
        "export": {k: summaries["export"].get(k) for k in ("rows", "shards")},
    }, default=str))


def run_child(config: dict, work: Path, *, flow: bool) -> dict:
    config_path = work / "thresher.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "benchmarks.pipeline", "--child", str(config_path)] + (["--flow"] if flow else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"The benchmark child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--flow", action="store_true", help="run the Prefect pipeline_flow instead of the Python API")
    parser.add_argument("--dask", action="store_true",
                        help="run each size a second time as the flow on a 2-worker Dask LocalCluster, and compare")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args.flow)
    console = Console(width=150)
    import duckdb
    import sklearn
    import snorkel

    import cleanlab
    console.print(f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, snorkel {snorkel.__version__}, "
                  f"cleanlab {cleanlab.__version__}, scikit-learn {sklearn.__version__}, {os.cpu_count()} cores")
    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        for rows in args.rows:
            work = root / f"rows{rows}"
            work.mkdir(parents=True, exist_ok=True)
            source = work / "rows.parquet"
            begun = time.perf_counter()
            planted = generate(source, rows, args.seed)
            console.print(f"{rows:,} rows generated in {time.perf_counter() - begun:.0f} s -> {source} "
                          f"({source.stat().st_size / 2**20:.0f} MiB; planted {planted})")
            modes = {"single process": (False, args.flow)}
            if args.dask:
                modes["dask LocalCluster (2 workers)"] = (True, True)
            results[rows] = {}
            for mode, (dask, flow) in modes.items():
                run_dir = work / mode.split()[0]
                if run_dir.exists():  # a database left by an earlier run would make ingest find every row present
                    shutil.rmtree(run_dir)
                run_dir.mkdir()
                results[rows][mode] = result = run_child(bench_config(run_dir, source, dask=dask), run_dir, flow=flow)
                table = Table(title=f"{rows:,} rows, {mode} ({'Prefect flow' if flow else 'Python API'})")
                for column in ("stage", "seconds", "peak GiB (PSS, workers incl.)"):
                    table.add_column(column)
                for stage, numbers in result["stages"].items():
                    peak = numbers.get("peak_gib")
                    table.add_row(stage, f"{numbers['seconds']:.1f}", "" if peak is None else f"{peak:.2f}")
                table.add_row("whole child process", f"{result['wall']:.1f}", f"{result['peak_gib']:.2f}")
                console.print(table)
                console.print({k: result[k] for k in ("ingest", "label", "detect", "export")})
                goal = GOALS.get(rows)
                if goal:
                    console.print(f"goal: <= {goal[0] / 60:.0f} min and <= {goal[1]} GiB -> "
                                  f"{'met' if result['wall'] <= goal[0] and result['peak_gib'] <= goal[1] else 'NOT met'}")
            if args.dask:
                one, two = results[rows].values()
                console.print(f"votes identical: {one['votes'] == two['votes']}; flags identical: {one['flags'] == two['flags']}")
    if len(results) > 1:
        growth = Table(title="Growth (single process): seconds / peak GiB (PSS, workers incl.) per stage")
        growth.add_column("rows")
        for stage in STAGES:
            growth.add_column(stage)
        growth.add_column("whole")
        for rows, by_mode in results.items():
            result = by_mode["single process"]
            growth.add_row(f"{rows:,}", *(f"{result['stages'][s]['seconds']:.0f} s / {result['stages'][s].get('peak_gib', float('nan')):.2f}"
                                          for s in STAGES), f"{result['wall']:.0f} s / {result['peak_gib']:.2f}")
        console.print(growth)


if __name__ == "__main__":
    main()
