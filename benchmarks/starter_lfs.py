"""Benchmark: what the LFs of a `thresher init` starter (no label column) are worth on real data.

For AG News, the YouTube comments and IMDB reviews, the texts are written to a JSONL file without
their labels, `thresher init --classes ...` writes the starter (a zero-shot prompted LF answered by
the offline embedded backend, and lfs.py's example rule), the gold labels are mapped as the config's
comment says (``gold: COL``, used only to score), and ingest + label run through the Python API.
The table: each LF's coverage and accuracy on the items it votes on, how its votes split between the
classes, and the share of rows the denoised labels decide (majority vote; ties and uncovered rows are
left undecided) with their accuracy.

    .venv/bin/python -m benchmarks.starter_lfs [--rows 1000]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from thresher.pipeline.api import Pipeline
from thresher.pipeline.starter import profile_data, write_starter
from benchmarks.shared import SHARED

AG_NEWS = ["World", "Sports", "Business", "Sci/Tech"]


def datasets(rows: int) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """name -> (texts, gold class names, classes), ``rows`` drawn at random (seed 0) from each."""
    rng = np.random.default_rng(0)
    out = {}
    ag = json.loads((SHARED / "cosine_agnews_devtest" / "dev_data.json").read_text())
    imdb = json.loads((SHARED / "cosine_imdb_devtest" / "dev_data.json").read_text())
    youtube = []
    for path in sorted((SHARED / "youtube_spam_collection_uci").glob("*.csv")):
        with path.open(encoding="utf-8-sig") as handle:
            youtube += [{"text": r["CONTENT"], "label": int(r["CLASS"])} for r in csv.DictReader(handle)]
    for name, data, classes in (("AG News", ag, AG_NEWS), ("YouTube", youtube, ["ham", "spam"]),
                                ("IMDB", imdb, ["negative", "positive"])):
        chosen = rng.choice(len(data), min(rows, len(data)), replace=False)
        out[name] = ([data[i]["text"] for i in chosen], [classes[data[i]["label"]] for i in chosen], classes)
    return out


def measure(root: Path, texts: list[str], gold: list[str], classes: list[str], encoder: str | None = None,
            margin: float | None = None) -> list[list[str]]:
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps({"text": t, "truth": g}) + "\n" for t, g in zip(texts, gold)))
    write_starter(root, profile_data(data, classes=classes, progress=False))
    config = root / "thresher.yaml"
    loaded = yaml.safe_load(config.read_text())
    loaded["sources"][0]["columns"]["gold"] = "truth"  # as the starter's comment says: only to score
    if encoder is not None:
        loaded["labeling"]["llm"]["encoder"] = encoder
    if margin is not None:
        loaded["labeling"]["llm"]["margin"] = margin
    config.write_text(yaml.safe_dump(loaded, sort_keys=False))
    pipe = Pipeline(config)
    pipe.run_stage("ingest")
    summary = pipe.run_stage("label")
    lfs = pipe.sql("SELECT lf, coverage, emp_accuracy FROM lf_summary").set_index("lf")  # one label run
    shares = pipe.sql("SELECT vote, count(*) AS n FROM prompt_votes GROUP BY vote ORDER BY vote")
    total = shares["n"].sum()
    split = ", ".join(f"{classes[int(r.vote)]} {r.n / total:.0%}" for r in shares.itertuples())
    decided = f"{summary['coverage']:.3f} at {summary['accuracy']['train']['denoised_decided']:.3f}"
    out = []
    for lf in ("zero_shot", "names_a_class"):
        row = lfs.loc[lf]
        out.append([lf, f"{row.coverage:.3f}", f"{row.emp_accuracy:.3f}", split if lf == "zero_shot" else "",
                    decided if lf == "zero_shot" else ""])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--encoder", choices=["minilm", "minilm-static"], default=None,
                        help="the zero-shot LF's encoder (default: what init writes)")
    parser.add_argument("--margin", type=float, default=None, help="its margin (default: what init writes)")
    args = parser.parse_args()
    table = Table(title=f"thresher init starter LFs, no label column ({args.rows} rows each; encoder "
                        f"{args.encoder or 'as init writes'}, margin {args.margin if args.margin is not None else 'as init writes'})")
    for column in ("dataset", "LF", "coverage", "accuracy where it votes", "zero-shot votes by class",
                   "denoised: covered, accuracy where decided"):
        table.add_column(column)
    for name, (texts, gold, classes) in datasets(args.rows).items():
        with tempfile.TemporaryDirectory() as tmp:
            for i, row in enumerate(measure(Path(tmp), texts, gold, classes, args.encoder, args.margin)):
                table.add_row(name if i == 0 else "", *row)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
