"""Benchmark: 20 keyword/regex LFs on 1M rows, and LabelModel fit+predict, thresher vs Snorkel.

Rows are generated from the real texts of the shared datasets (YouTube, SMS, AG News, IMDB, TREC):
texts are drawn with replacement and each copy gets a numeric suffix, so this is synthetic scale
built from real text. Items are loaded straight into the items table (ingest is not timed here).

Snorkel's PandasLFApplier is timed on a sample (default 50,000 rows) and extrapolated linearly to
the full size; its votes on the sample must equal thresher's. The sample DataFrame has object
dtype, thresher's application is timed with and without reading the L matrix back, and the runs
are interleaved (medians shown). The LabelModel comparison fits
Snorkel's LabelModel directly on the same L matrix that thresher builds from its vote cache.

    .venv/bin/python -m benchmarks.labeling --rows 1000000 --snorkel-rows 50000
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.table import Table
from snorkel.labeling import LabelingFunction, PandasLFApplier
from snorkel.labeling.model import LabelModel

from thresher.labeling.apply.incremental import cached_votes, update_vote_cache
from thresher.labeling.config import DenoiseConfig
from thresher.labeling.lf import KeywordLF, RegexLF
from thresher.labeling.lf.keyword import terms_pattern
from thresher.labeling.matrix import vote_matrix
from thresher.labeling.label_models import quiet_snorkel
from thresher.labeling.model import denoise
from thresher.storage.schema import connect
from benchmarks.shared import SHARED

ROOT = Path(__file__).resolve().parents[1]

# (name, kind, label, terms or pattern)
LF_SPECS = [
    ("subscribe", "keyword", 1, ["subscribe", "sub4sub"]), ("check_out", "regex", 1, r"check\s+(it\s+)?out"),
    ("my_channel", "keyword", 1, ["my channel", "my video"]), ("free", "keyword", 1, ["free", "for free"]),
    ("winner", "regex", 1, r"\bwin(ner|ning)?\b"), ("click", "keyword", 1, ["click", "visit"]),
    ("link", "regex", 1, r"https?://|www\."), ("call_now", "regex", 1, r"call\s+(now|today)|\bcall 0\d"),
    ("txt", "keyword", 1, ["txt", "text me"]), ("prize", "keyword", 1, ["prize", "cash", "reward"]),
    ("song", "keyword", 0, ["song", "music"]), ("love", "keyword", 0, ["love", "loved"]),
    ("thanks", "keyword", 0, ["thanks", "thank you"]), ("sports", "keyword", 0, ["game", "team", "season"]),
    ("world", "keyword", 0, ["election", "government", "minister"]),
    ("business", "keyword", 0, ["company", "shares", "profit"]), ("movie", "keyword", 0, ["movie", "film"]),
    ("question", "regex", 0, r"^(what|who|when|where|how)\b"), ("great", "keyword", 0, ["great", "awesome"]),
    ("bad", "regex", 0, r"\b(bad|worst|boring)\b"),
]


def thresher_lfs() -> list:
    lfs = []
    for name, kind, label, spec in LF_SPECS:
        if kind == "keyword":
            lfs.append(KeywordLF(name, terms=spec, label=label))
        else:
            lfs.append(RegexLF(name, pattern=spec, label=label, case_sensitive=False))
    return lfs


def snorkel_lfs() -> list[LabelingFunction]:
    """The same LFs as ordinary Snorkel LFs over Python ``re`` (ASCII classes, as RE2 has)."""
    lfs = []
    for name, kind, label, spec in LF_SPECS:
        pattern = terms_pattern(spec, case_sensitive=False, word_boundary=True) if kind == "keyword" else spec
        compiled = re.compile(pattern, re.IGNORECASE | re.ASCII)

        def f(x, compiled=compiled, label=label):
            return label if compiled.search(x.text) else -1

        lfs.append(LabelingFunction(name, f))
    return lfs


def real_texts() -> list[str]:
    texts: list[str] = []
    for split in ("train", "valid", "test"):
        texts += [e["data"]["text"] for e in json.loads((SHARED / "wrench_youtube" / f"{split}.json").read_text()).values()]
    with (SHARED / "sms_spam_implyloss" / "train.csv").open(encoding="utf-8", newline="") as handle:
        texts += [r["v2"] for r in csv.DictReader(handle)]
    for folder in ("cosine_agnews_devtest", "cosine_imdb_devtest"):
        texts += [e["text"] for e in json.loads((SHARED / folder / "dev_data.json").read_text())]
    texts += [line.partition(":")[2] for line in (SHARED / "trec_implyloss" / "train.txt").read_text(encoding="latin-1").splitlines()]
    return texts


def insert_generated_items(con, texts: list[str], item_ids: list[str]) -> None:
    """Load generated rows straight into the items table (ingest is not what these benchmarks time)."""
    n = len(texts)
    items = pa.table({
        "item_id": item_ids, "item_seq": pa.array(np.arange(1, n + 1), pa.int64()),
        "dataset": ["bench"] * n, "split": ["train"] * n, "text": texts,
        "content_hash": [""] * n, "source": ["generated"] * n, "extra": ["{}"] * n,
    })
    con.register("_bench", items)
    con.execute("INSERT INTO items (item_id, item_seq, dataset, split, text, content_hash, source, extra) "
                "SELECT item_id, item_seq, dataset, split, text, content_hash, source, extra::JSON FROM _bench")
    con.unregister("_bench")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--snorkel-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console()

    pool = real_texts()
    rng = np.random.default_rng(args.seed)
    picks = rng.integers(0, len(pool), args.rows)
    texts = [f"{pool[p]} {i}" for i, p in enumerate(picks)]
    item_ids = [f"bench:{i:09d}" for i in range(args.rows)]
    console.print(f"{args.rows:,} rows generated from {len(pool):,} real texts; peak RSS so far {peak_rss_mib():.0f} MiB")

    from benchmarks.lf_apply import versions

    console.print(versions())
    # object dtype: Snorkel's applier is ~3x slower on pandas 3's default string dtype, which would flatter thresher
    sample = pd.DataFrame({"text": pd.Series(texts[: args.snorkel_rows], dtype=object)})
    lfs = thresher_lfs()
    apply_times, matrix_times, snorkel_times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        insert_generated_items(con, texts, item_ids)
        for repeat in range(args.repeats):  # interleaved: Snorkel's sample, then thresher from an empty vote cache
            start = time.perf_counter()
            L_snorkel = PandasLFApplier(snorkel_lfs()).apply(sample, progress_bar=False)
            snorkel_times.append(time.perf_counter() - start)
            con.execute("DELETE FROM lf_votes; DELETE FROM lf_progress")
            start = time.perf_counter()
            update_vote_cache(con, lfs, through_seq=args.rows)
            apply_times.append(time.perf_counter() - start)
            rss_after_apply = peak_rss_mib()
            start = time.perf_counter()
            votes = cached_votes(con, lfs, through_seq=args.rows)
            L = vote_matrix(votes, item_ids, [lf.name for lf in lfs])
            matrix_times.append(time.perf_counter() - start)
        con.close()

    snorkel_sample_s, apply_s, matrix_s = (statistics.median(t) for t in (snorkel_times, apply_times, matrix_times))
    snorkel_full_s = snorkel_sample_s * args.rows / args.snorkel_rows
    mismatches = int((L_snorkel != L[: args.snorkel_rows]).sum())
    runs = lambda times: " ".join(f"{t:.2f}" for t in times)  # noqa: E731

    results = [
        ("Snorkel PandasLFApplier (returns L)", f"{snorkel_full_s:.1f} (from {args.snorkel_rows:,} rows: {runs(snorkel_times)} s)", "1.0x"),
        ("thresher: apply 20 LFs in DuckDB + store votes", f"{apply_s:.2f} ({runs(apply_times)})", f"{snorkel_full_s / apply_s:.0f}x"),
        ("thresher: read votes back as the L matrix", f"{matrix_s:.2f} ({runs(matrix_times)})", ""),
        ("thresher: apply + read back (like for like)", f"{apply_s + matrix_s:.2f}", f"{snorkel_full_s / (apply_s + matrix_s):.0f}x"),
    ]
    table = Table(title=f"LF application: {args.rows:,} rows x {len(lfs)} keyword/regex LFs, 2 cores, "
                        f"median of {args.repeats} interleaved runs")
    for column in ("engine", "seconds", "speed-up"):
        table.add_column(column)
    for row in results:
        table.add_row(*row)
    console.print(table)
    console.print(f"votes: {(L != -1).sum():,} non-abstain; coverage {(L != -1).any(axis=1).mean():.3f}; "
                  f"Snorkel vs thresher on the {args.snorkel_rows:,}-row sample: {mismatches} differing cells; "
                  f"peak RSS after thresher's application {rss_after_apply:.0f} MiB (includes the generated texts)")

    config = DenoiseConfig()

    def snorkel_fit_predict(L_: np.ndarray) -> None:
        with quiet_snorkel():
            model = LabelModel(cardinality=2, verbose=False)
            model.fit(L_, n_epochs=config.n_epochs, lr=config.lr, l2=config.l2, seed=config.seed, progress_bar=False)
            model.predict_proba(L_)

    snorkel_fit_predict(L[:1000])  # torch's first use costs ~2 s: keep it out of both timings
    thresher_times, snorkel_times = [], []
    for _ in range(5):  # alternate, keep the best of five (single fits vary by +-50 % here)
        start = time.perf_counter()
        denoise(L, L, cardinality=2, config=config)
        thresher_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        snorkel_fit_predict(L)
        snorkel_times.append(time.perf_counter() - start)
    thresher_lm_s, snorkel_lm_s = min(thresher_times), min(snorkel_times)
    table = Table(title=f"LabelModel fit + predict_proba on {args.rows:,} x {len(lfs)} (best of 5, after warm-up)")
    for column in ("implementation", "seconds", "ratio to Snorkel"):
        table.add_column(column)
    table.add_row("Snorkel LabelModel", f"{snorkel_lm_s:.2f}", "1.00")
    table.add_row("thresher denoise()", f"{thresher_lm_s:.2f}", f"{thresher_lm_s / snorkel_lm_s:.2f}")
    console.print(table)
    console.print(f"peak RSS at the end: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
