"""benchmarks/gpu.py is run on a GPU machine that has none of thresher's heavier dependencies: it
must import with torch, numpy, pyarrow, scikit-learn and thresher's own modules alone, and run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("duckdb", "prefect", "snorkel", "cleanlab", "crowdkit", "sentence_transformers", "transformers", "dask")


def test_the_gpu_benchmark_imports_nothing_heavy():
    probe = ("import sys, benchmarks.gpu; "
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.slow
def test_the_gpu_benchmark_runs_on_a_cpu():
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--quick"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for title in ("STORM vs a plain epoch", "GPU = CPU", "Loader: shards into tensors", "examples/train_worker.py"):
        assert title in done.stdout
    assert "failed" not in done.stdout, done.stdout
