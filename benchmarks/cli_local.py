"""Benchmark: `thresher label` after one LF edit, the CLI against the Python API, idle and busy.

The user's loop: edit one Python LF, re-run labeling. On a copy of the bundled example (ingested
once, labelled once), each repeat edits ``short_comment`` in ``lfs.py`` (its docstring, so only that
LF re-runs) and then times, each as a new process (what the user waits for), interleaved:

  cli        ``thresher label thresher.yaml --no-progress``, no Prefect server configured: the stages
             run without Prefect (pipeline/local.py)
  api        ``python -c "thresher.Pipeline('thresher.yaml').run_stage('label')"``: the same work
  ephemeral  the CLI with ``THRESHER_PREFECT=ephemeral``: Prefect's temporary server, what every CLI
             command paid before (only with --ephemeral: a minute per run on a busy machine)

Medians of ``--repeats`` runs, with no other work and then with ``--busy`` CPU-bound processes beside.

    .venv/bin/python -m benchmarks.cli_local [--repeats 3] [--busy 2] [--ephemeral]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "youtube"
THRESHER = str(Path(sys.executable).with_name("thresher"))


def _spin() -> None:
    while True:
        pass


def _edit(lfs: Path, n: int) -> None:
    text = lfs.read_text()
    start = text.index('    """Ham comments are often short')
    end = text.index("\n", start)
    lfs.write_text(text[:start] + f'    """Ham comments are often short, such as \'cool video!\' (edit {n})."""' + text[end:])


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def measure(project: Path, repeats: int, ephemeral: bool, counter: list[int]) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(project / "prefect-home")  # no profile with a server: the user's default
    api = [sys.executable, "-c", "import thresher; thresher.Pipeline('thresher.yaml').run_stage('label')"]
    runs = {"cli": ([THRESHER, "label", "thresher.yaml", "--no-progress"], env), "api": (api, env)}
    if ephemeral:
        runs["ephemeral"] = ([THRESHER, "label", "thresher.yaml", "--no-progress"], {**env, "THRESHER_PREFECT": "ephemeral"})
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (command, run_env) in runs.items():
            counter[0] += 1
            _edit(project / "lfs.py", counter[0])
            times[name].append(_timed(command, project, run_env))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--ephemeral", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, prefect {version('prefect')}, {os.cpu_count()} cores; "
          f"median of {args.repeats} runs, interleaved\n")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "youtube"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("export", "*.duckdb*", "*.snapshot"))
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        subprocess.run([THRESHER, "ingest", "thresher.yaml", "--no-progress"], cwd=project, env=env, check=True,
                       capture_output=True)
        subprocess.run([THRESHER, "label", "thresher.yaml", "--no-progress"], cwd=project, env=env, check=True,
                       capture_output=True)  # every LF's votes cached: an edit re-runs one LF
        counter = [0]
        results = {"idle": measure(project, args.repeats, args.ephemeral, counter)}
        spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
        for spinner in spinners:
            spinner.start()
        try:
            results[f"{args.busy} busy"] = measure(project, args.repeats, args.ephemeral, counter)
        finally:
            for spinner in spinners:
                spinner.terminate()
    print("| machine | " + " | ".join(f"{name} s" for name in results["idle"]) + " | cli - api s |")
    print("|---|" + "---|" * (len(results["idle"]) + 1))
    for machine, medians in results.items():
        print(f"| {machine} | " + " | ".join(f"{v:.1f}" for v in medians.values())
              + f" | {medians['cli'] - medians['api']:+.1f} |")


if __name__ == "__main__":
    main()
