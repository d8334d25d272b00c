"""Benchmark: LFs applied by thresher (one DuckDB pass; Python applier) vs Snorkel's PandasLFApplier.

Rows are the 1,953 bundled YouTube comments resampled with replacement to --rows rows (each copy
gets a numeric suffix so rows differ); this is synthetic scale built from real text. Both
appliers get the same six LFs and must produce the same label matrix, which is checked.

    .venv/bin/python -m benchmarks.lf_apply --rows 100000
"""

from __future__ import annotations

import argparse
import re
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
            path=str(ROOT / "examples/youtube/data/*.csv"), dataset="youtube",
            columns={"text": "CONTENT", "id": "COMMENT_ID"})]))
        texts = [r[0] for r in con.execute("SELECT text FROM items ORDER BY item_id").fetchall()]
        rng = np.random.default_rng(args.seed)
        picks = rng.integers(0, len(texts), args.rows)
        rows = pd.DataFrame({
            "item_id": [f"{i:09d}" for i in range(args.rows)],
            "text": [f"{texts[p]} {i}" for i, p in enumerate(picks)],
        })
        con.execute("CREATE TABLE bench_items AS SELECT item_id, 'bench' AS dataset, NULL::VARCHAR AS split, "
                    "text, NULL::INTEGER AS label, '{}' AS extra FROM rows")

        start = time.perf_counter()  # the first call in a process also loads the compiled literal scanner
        apply_sql_lfs(con, THRESHER, items="bench_items")
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        votes = apply_sql_lfs(con, THRESHER, items="bench_items")
        thresher_s = time.perf_counter() - start
        L_thresher = vote_matrix(votes, rows["item_id"].tolist(), [lf.name for lf in THRESHER])

        start = time.perf_counter()
        python_votes, _ = apply_python_lfs(con, [PythonLF(f) for f in SNORKEL], items="bench_items")
        python_s = time.perf_counter() - start
        L_python = vote_matrix(python_votes, rows["item_id"].tolist(), [f.name for f in SNORKEL])

        start = time.perf_counter()
        L_snorkel = PandasLFApplier(SNORKEL).apply(rows, progress_bar=False)
        snorkel_s = time.perf_counter() - start
        con.close()

    identical = bool(np.array_equal(L_thresher, L_snorkel) and np.array_equal(L_python, L_snorkel))
    table = Table(title=f"{args.rows:,} rows x {len(THRESHER)} LFs (keyword/regex), 2-core CPU")
    for column in ("applier", "seconds", "µs / row / LF", "speed-up vs Snorkel"):
        table.add_column(column)
    per = 1e6 / (args.rows * len(THRESHER))
    table.add_row("Snorkel PandasLFApplier", f"{snorkel_s:.2f}", f"{snorkel_s * per:.2f}", "1.0x")
    table.add_row("thresher Python applier (same Snorkel LFs)", f"{python_s:.2f}", f"{python_s * per:.2f}", f"{snorkel_s / python_s:.1f}x")
    table.add_row("thresher DuckDB, first call in the process", f"{first_s:.2f}", f"{first_s * per:.2f}", f"{snorkel_s / first_s:.1f}x")
    table.add_row("thresher DuckDB, next call", f"{thresher_s:.2f}", f"{thresher_s * per:.2f}", f"{snorkel_s / thresher_s:.1f}x")
    Console().print(table)
    print(f"label matrices of all three identical: {identical}; non-abstain votes: {(L_thresher != -1).sum():,}")
    if not identical:
        raise SystemExit("The two appliers disagree: the comparison is void.")


if __name__ == "__main__":
    main()
