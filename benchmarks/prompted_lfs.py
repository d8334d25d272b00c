"""Benchmark: the shape of Smith et al. 2022's table with thresher's embedded backend (offline MiniLM).

Rows, on YouTube (WRENCH splits; test accuracy) and SMS (ImplyLoss splits; test spam F1):
  zero-shot     one prompt ("Is this spam?"), its answer is the label (margin 0: it always answers)
  prompted      several yes/no prompted LFs + Snorkel's LabelModel (YouTube: the 8 of
                examples/youtube/thresher.yaml; SMS: benchmarks/prompts/sms.yaml)
  keyword       the WRENCH keyword LFs (YouTube: the 10 shipped votes; SMS: the 73 rules) + LabelModel
  all           prompted + keyword LFs + LabelModel
The LabelModel is fitted on the train split's votes only (no gold label is used anywhere but in
scoring). The prompts were written from the WRENCH LFs and checked on the valid split only.

The embedded backend is not a generative LLM (see labeling/llm/embedded.py): compare the *shape* of
the table with Smith et al.'s T0++ numbers, not the values.

    .venv/bin/python -m benchmarks.prompted_lfs [--encoder minilm|minilm-static]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from thresher.storage.schema import connect
from benchmarks.shared import SHARED

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = Path(__file__).resolve().parent / "prompts"
# Smith et al. 2022, Table 3 (T0++, calibrated; test split): zero-shot -> prompted weak supervision.
PAPER = {"youtube": (58.7, 92.0), "sms": (83.2, 91.8)}
WRENCH_LFS_PAPER = {"youtube": 94.9, "sms": 92.4}  # hand-written LFs + MV + RoBERTa end model


def prompts(name: str) -> list[dict]:
    """The task's prompted LFs: YouTube's are the bundled example's, SMS's are in benchmarks/prompts/."""
    if name == "youtube":
        example = yaml.safe_load((ROOT / "examples" / "youtube" / "thresher.yaml").read_text())
        return [lf for lf in example["labeling"]["lfs"] if lf["kind"] == "prompt"]
    return yaml.safe_load((PROMPTS / f"{name}.yaml").read_text())


def load(con, task: str) -> list[str]:
    """Ingest a task's splits; return its classes."""
    if task == "youtube":
        classes = ["HAM", "SPAM"]
        sources = [SourceConfig(path=str(SHARED / "wrench_youtube" / "[tv]*.json"), dataset="youtube", format="wrench")]
    else:
        classes = ["ham", "spam"]
        sources = [SourceConfig(path=str(SHARED / "sms_spam_implyloss" / f"{split}.csv"), dataset="sms", split=split,
                                columns={"text": "v2", "gold": "v1"}) for split in ("train", "valid", "test")]
    ingest(con, IngestConfig(classes=classes, sources=sources))
    return classes


def keyword_lfs(task: str) -> dict:
    if task == "youtube":
        return {"source_votes": True}
    return {"lfs": [{"kind": "rule_file", "path": str(SHARED / "sms_spam_implyloss" / "rule.txt"), "prefix": "rule"}]}


def run(con, task: str, classes: list[str], row: str, encoder: str) -> dict:
    embedded = {"backend": "embedded", "encoder": encoder}
    fit = {"fit_splits": ["train"]}
    zero_shot = yaml.safe_load((PROMPTS / "zero_shot.yaml").read_text())[task]
    if row == "zero-shot":
        cfg = {"lfs": [zero_shot], "llm": {**embedded, "margin": 0.0}, "model": {"model": "majority"}}
    elif row == "prompted":
        cfg = {"lfs": prompts(task), "llm": embedded, "model": fit}
    elif row == "keyword":
        cfg = {**keyword_lfs(task), "model": fit}
    else:
        keyword = keyword_lfs(task)
        cfg = {**keyword, "lfs": keyword.get("lfs", []) + prompts(task), "llm": embedded, "model": fit}
    started = time.perf_counter()
    summary = label(con, LabelingConfig(classes=classes, **cfg), run_id=f"{task}-{row}")
    seconds = time.perf_counter() - started
    metric = "denoised" if task == "youtube" else "denoised_f1"
    scores = {split: summary.accuracy[split] for split in ("valid", "test")}
    return {"task": task, "row": row, "n_lfs": summary.n_lfs, "seconds": seconds,
            "test": scores["test"][metric], "test_mv": scores["test"][metric.replace("denoised", "majority_vote")],
            "valid": scores["valid"][metric], "coverage_test": scores["test"]["coverage"],
            "sent": (summary.llm or {}).get("sent", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", choices=["minilm", "minilm-static"], default="minilm")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in ("youtube", "sms"):
            con = connect(Path(tmp) / f"{task}.duckdb")
            classes = load(con, task)
            for row in ("zero-shot", "prompted", "keyword", "all"):
                results.append(run(con, task, classes, row, args.encoder))
            con.close()
    table = Table(title=f"Prompted LFs with the embedded backend ({args.encoder}); YouTube: accuracy, SMS: spam F1 (%)")
    for column in ("task", "labels from", "LFs", "test (LabelModel)", "test (majority)", "valid", "test coverage",
                   "prompts sent", "seconds"):
        table.add_column(column)
    for r in results:
        table.add_row(r["task"], r["row"], str(r["n_lfs"]), f"{100 * r['test']:.1f}", f"{100 * r['test_mv']:.1f}",
                      f"{100 * r['valid']:.1f}", f"{r['coverage_test']:.2f}", str(r["sent"]), f"{r['seconds']:.1f}")
    console = Console(width=150)
    console.print(table)
    for task, (zero, prompted) in PAPER.items():
        console.print(f"Smith et al. (T0++), {task}: zero-shot {zero}, prompted WS {prompted}; "
                      f"WRENCH LFs + RoBERTa {WRENCH_LFS_PAPER[task]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
