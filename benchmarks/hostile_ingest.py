"""Benchmark: ingest of a 1M-row file with 1 % bad rows spread through it (CSV and JSONL).

The good rows are real texts of the shared datasets (drawn with replacement, each given its own
id); every 100th row is bad, cycling through the bad kinds the format can hold (an unclosed quote,
a wrong field count, invalid UTF-8, a NUL, a lone surrogate, an empty text, an unknown label, an
oversize field, truncated JSON). Each format is ingested in a fresh process into a fresh DuckDB
file; the table gives wall time, peak RSS and whether every row is accounted for (items + rejects
= rows, the rejects exactly the planted ones).

    .venv/bin/python -m benchmarks.hostile_ingest --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.labeling import SHARED

BAD_EVERY = 100
BAD_KINDS = {
    "csv": [("unclosed_quote", "unparseable"), ("fields", "unparseable"), ("utf8", "invalid_utf8"),
            ("nul", "control_character"), ("empty", "missing_text"), ("label", "wrong_type"),
            ("oversize", "oversize_field")],
    "jsonl": [("truncated", "unparseable"), ("utf8", "invalid_utf8"), ("surrogate", "invalid_unicode"),
              ("nul", "control_character"), ("empty", "missing_text"), ("label", "wrong_type"),
              ("oversize", "oversize_field")],
}
MAX_BYTES = 10_000


def texts() -> list[str]:
    pool: list[str] = []
    for name in ("wrench_youtube", "wrench_sms", "wrench_trec"):
        for split in ("train", "valid", "test"):
            path = SHARED / name / f"{split}.json"
            if path.exists():
                pool += [e["data"]["text"] for e in json.loads(path.read_text()).values()]
    return [t for t in pool if t.strip() and '"' not in t[:1]]


def write(fmt: str, path: Path, n: int, seed: int = 0) -> dict[str, int]:
    """Write ``n`` rows; return the planted rejects by reason."""
    rng = np.random.default_rng(seed)
    pool = texts()
    picks = rng.integers(0, len(pool), size=n)
    kinds = BAD_KINDS[fmt]
    planted: dict[str, int] = {}
    with path.open("wb") as out:
        if fmt == "csv":
            out.write(b"id,text,label\n")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for i in range(n):
            text, label = pool[picks[i]], ("HAM", "SPAM")[i % 2]
            kind, reason = kinds[(i // BAD_EVERY) % len(kinds)] if i % BAD_EVERY == BAD_EVERY - 1 else (None, None)
            if fmt == "csv":
                fields = [f"r{i}", text, label]
                if kind == "unclosed_quote":
                    data = f'r{i},"{text.splitlines()[0] if text.splitlines() else "x"},{label}\n'.encode()
                else:
                    if kind == "fields":
                        fields.append("extra")
                    elif kind == "nul":
                        fields[1] = text + "\0"
                    elif kind == "empty":
                        fields[1] = ""
                    elif kind == "label":
                        fields[2] = "MAYBE"
                    elif kind == "oversize":
                        fields[1] = "x" * (MAX_BYTES + 1)
                    elif kind == "utf8":
                        fields[1] = "caf\udce9 " + text  # the byte 0xE9 alone: latin-1, not UTF-8
                    buffer.seek(0)
                    buffer.truncate()
                    writer.writerow(fields)
                    data = buffer.getvalue().encode("utf-8", "surrogateescape")
            else:
                obj = {"id": f"r{i}", "text": text, "label": label}
                if kind == "nul":
                    obj["text"] = text + "\0"
                elif kind == "empty":
                    obj["text"] = " "
                elif kind == "label":
                    obj["label"] = "MAYBE"
                elif kind == "oversize":
                    obj["text"] = "x" * (MAX_BYTES + 1)
                data = json.dumps(obj).encode()
                if kind == "truncated":
                    data = data[:-5]
                elif kind == "utf8":
                    data = data.replace(b'"text": "', b'"text": "\xff', 1)
                elif kind == "surrogate":
                    data = data.replace(b'"text": "', b'"text": "\\ud800', 1)
                data += b"\n"
            out.write(data)
            if reason:
                planted[reason] = planted.get(reason, 0) + 1
    return planted


def run_one(fmt: str, rows: int) -> dict:
    """In this process: write, ingest, check; the measurements as a dict."""
    from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
    from thresher.storage.schema import connect

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"hostile.{fmt}"
        planted = write(fmt, path, rows)
        size = path.stat().st_size
        con = connect(Path(tmp) / "t.duckdb")
        start = time.perf_counter()
        summary = ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
            path=str(path), dataset="h", max_field_bytes=MAX_BYTES,
            columns={"id": "id", "text": "text", "label": "label"})]))
        seconds = time.perf_counter() - start
        items = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
        rejects = dict(con.execute("SELECT reason, count(*) FROM rejects GROUP BY reason").fetchall())
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"format": fmt, "rows": rows, "bytes": size, "items": items, "rejects": rejects, "planted": planted,
            "seconds": seconds, "peak_gib": peak,
            "accounted": items + sum(rejects.values()) == rows and rejects == planted and summary.rows == rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", nargs="+", default=["csv", "jsonl"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.rows)))
        return
    import duckdb as _duckdb

    console = Console(width=160)
    console.print(f"python {sys.version.split()[0]}, duckdb {_duckdb.__version__}, {args.rows:,} rows, "
                  f"1 in {BAD_EVERY} bad")
    table = Table(title="Ingest of a file with 1 % bad rows (fresh process and database per format)")
    for column in ("format", "rows", "file MB", "items", "rejects", "seconds", "rows/s", "peak RSS GiB",
                   "all rows accounted for"):
        table.add_column(column)
    reasons = []
    for fmt in args.formats:
        done = subprocess.run([sys.executable, "-m", "benchmarks.hostile_ingest", "--rows", str(args.rows),
                               "--one", fmt], capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        table.add_row(fmt, f"{r['rows']:,}", f"{r['bytes'] / 1e6:.0f}", f"{r['items']:,}",
                      f"{sum(r['rejects'].values()):,}", f"{r['seconds']:.1f}",
                      f"{r['rows'] / r['seconds']:,.0f}", f"{r['peak_gib']:.2f}", "yes" if r["accounted"] else "NO")
        reasons.append(f"{fmt}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["rejects"].items())))
    console.print(table)
    for line in reasons:
        console.print(f"  rejects by reason, {line}", highlight=False)


if __name__ == "__main__":
    main()
