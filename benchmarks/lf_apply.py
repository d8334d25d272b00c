"""Benchmark: LFs applied by thresher (one DuckDB pass; Python applier) vs Snorkel's PandasLFApplier.

Rows are the 1,953 bundled YouTube comments resampled with replacement to --rows rows (each copy
gets a numeric suffix so rows differ); this is synthetic scale built from real text. Every
applier gets the same six LFs and must return the same label matrix, which is checked; the
DataFrame has object dtype, thresher's times include reading the matrix back, and the runs of
the appliers are interleaved.

    .venv/bin/python -m benchmarks.lf_apply --rows 100000
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from snorkel.labeling import PandasLFApplier, labeling_function

from thresher.labeling.apply import apply_python_lfs, apply_sql_lfs
from thresher.labeling.lf import KeywordLF, PythonLF, RegexLF
from thresher.labeling.matrix import vote_matrix
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from thresher.storage.schema import connect

ROOT = Path(__file__).resolve().parents[1]
HAM, SPAM, ABSTAIN = 0, 1, -1


@labeling_function()
def subscribe(x):
    return SPAM if "subscribe" in x.text.lower() else ABSTAIN


@labeling_function()
def my_channel(x):
    return SPAM if re.search(r"\bmy (channel|video)\b", x.text, flags=re.I) else ABSTAIN


@labeling_function()
def check_out(x):
    return SPAM if re.search(r"check\s+(it\s+)?out", x.text, flags=re.I) else ABSTAIN


@labeling_function()
def song(x):
    return HAM if re.search(r"\b(song|beautiful)\b", x.text, flags=re.I) else ABSTAIN


@labeling_function()
def link(x):
    return SPAM if re.search(r"https?://|www\.", x.text) else ABSTAIN


@labeling_function()
def please(x):
    return SPAM if re.search(r"\b(please|plz|pls)\b", x.text, flags=re.I) else ABSTAIN


SNORKEL = [subscribe, my_channel, check_out, song, link, please]
THRESHER = [
    KeywordLF("subscribe", terms=["subscribe"], label=SPAM, word_boundary=False),
    KeywordLF("my_channel", terms=["my channel", "my video"], label=SPAM),
    RegexLF("check_out", pattern=r"check\s+(it\s+)?out", label=SPAM, case_sensitive=False),
    KeywordLF("song", terms=["song", "beautiful"], label=HAM),
    RegexLF("link", pattern=r"https?://|www\.", label=SPAM),
    KeywordLF("please", terms=["please", "plz", "pls"], label=SPAM),
]


def versions() -> str:
    import duckdb
    import snorkel

    return f"pandas {pd.__version__}, snorkel {snorkel.__version__}, duckdb {duckdb.__version__}, numpy {np.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each applier; the median is shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(versions())

    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
            path=str(ROOT / "examples/youtube/data/*.csv"), dataset="youtube",
            columns={"text": "CONTENT", "id": "COMMENT_ID"})]))
        texts = [r[0] for r in con.execute("SELECT text FROM items ORDER BY item_id").fetchall()]
        rng = np.random.default_rng(args.seed)
        picks = rng.integers(0, len(texts), args.rows)
        # object dtype: Snorkel's applier is ~3x slower on pandas 3's default string dtype, which would flatter thresher
        rows = pd.DataFrame({
            "item_id": pd.Series([f"{i:09d}" for i in range(args.rows)], dtype=object),
            "text": pd.Series([f"{texts[p]} {i}" for i, p in enumerate(picks)], dtype=object),
        })
        assert (rows.dtypes == object).all()
        con.execute("CREATE TABLE bench_items AS SELECT item_id, 'bench' AS dataset, NULL::VARCHAR AS split, "
                    "text, NULL::INTEGER AS label, '{}' AS extra FROM rows")
        ids = rows["item_id"].tolist()

        def duckdb_lfs() -> np.ndarray:  # Snorkel returns the L matrix: so the timing includes reading it back
            return vote_matrix(apply_sql_lfs(con, THRESHER, items="bench_items"), ids, [lf.name for lf in THRESHER])

        def python_lfs() -> np.ndarray:
            votes, _ = apply_python_lfs(con, [PythonLF(f) for f in SNORKEL], items="bench_items")
            return vote_matrix(votes, ids, [f.name for f in SNORKEL])

        def snorkel_lfs() -> np.ndarray:
            return PandasLFApplier(SNORKEL).apply(rows, progress_bar=False)

        start = time.perf_counter()  # the first call in a process also loads the compiled literal scanner
        L_thresher = duckdb_lfs()
        first_s = time.perf_counter() - start
        runs = {"Snorkel PandasLFApplier": snorkel_lfs, "thresher Python applier (same Snorkel LFs)": python_lfs,
                "thresher DuckDB (next calls)": duckdb_lfs}
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        matrices: dict[str, np.ndarray] = {}
        for repeat in range(args.repeats):
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))  # interleaved, alternating order
            for name in order:
                start = time.perf_counter()
                matrices[name] = runs[name]()
                seconds[name].append(time.perf_counter() - start)
        con.close()

    L_snorkel = matrices["Snorkel PandasLFApplier"]
    identical = all(np.array_equal(L, L_snorkel) for L in [L_thresher, *matrices.values()])
    table = Table(title=f"{args.rows:,} rows x {len(THRESHER)} LFs (keyword/regex), label matrix returned, "
                        f"median of {args.repeats} interleaved runs, {os.cpu_count()} cores")
    for column in ("applier", "seconds (median)", "runs", "µs / row / LF", "speed-up vs Snorkel"):
        table.add_column(column)
    per = 1e6 / (args.rows * len(THRESHER))
    reference = statistics.median(seconds["Snorkel PandasLFApplier"])
    for name, values in [*seconds.items(), ("thresher DuckDB, first call in the process", [first_s])]:
        median = statistics.median(values)
        table.add_row(name, f"{median:.2f}", " ".join(f"{v:.2f}" for v in values), f"{median * per:.2f}",
                      f"{reference / median:.1f}x")
    Console().print(table)
    print(f"label matrices identical: {identical}; non-abstain votes: {(L_thresher != -1).sum():,}")
    if not identical:
        raise SystemExit("The appliers disagree: the comparison is void.")


if __name__ == "__main__":
    main()
