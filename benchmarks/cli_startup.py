"""Benchmark: wall time of the read-only CLI commands on the bundled example's finished run.

    make demo && .venv/bin/python -m benchmarks.cli_startup

Each command runs as a new process (what a user waits for), 5 times interleaved; the median is shown,
next to the 1.5 s goal. Nothing else should run meanwhile.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "youtube" / "thresher.yaml"
DB = ROOT / "demo-out" / "thresher.duckdb"
GOAL = 1.5


def commands(out: Path) -> dict[str, list[str]]:
    thresher = [sys.executable, "-m", "thresher.cli"]
    return {
        "--help": [*thresher, "--help"],
        "--version": [*thresher, "--version"],
        "sql": [*thresher, "sql", "select count(*) from items", "--db", str(DB)],
        "lfs": [*thresher, "lfs", str(CONFIG), "--db", str(DB)],
        "check": [*thresher, "check", str(CONFIG)],
        "report": [*thresher, "report", str(CONFIG), "--db", str(DB), "--out", str(out / "report.html")],
    }


def main() -> None:
    if not DB.exists():
        raise SystemExit(f"{DB} does not exist: run `make demo` first.")
    with tempfile.TemporaryDirectory() as tmp:
        runs = commands(Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(5):
            for name, command in runs.items():
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
                times[name].append(time.perf_counter() - started)
    print(f"python {sys.version.split()[0]}; median of 5 runs per command\n")
    print("| command | median s | goal |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| thresher {name} | {median:.2f} | {'met' if median < GOAL else 'missed'} (< {GOAL} s) |")


if __name__ == "__main__":
    main()
