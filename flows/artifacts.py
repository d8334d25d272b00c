"""What a run shows on the Prefect server: each stage's summary artifact, the pipeline's, a line per run.

Numbers are rounded to three decimals; the pipeline run (the parent of the stage subflows) carries
one markdown artifact, ``thresher-pipeline``, with each stage's headline figures, gold metrics
included. Under ``thresher deploy`` each flow run also prints one line on the serving terminal.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import Any

RUN_LINES = "THRESHER_RUN_LINES"  # set by `thresher deploy`: each flow run prints one line when it ends


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def headline(stage: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The figures of one stage summary a person looks for first (gold metrics where there is gold)."""
    s = summary
    if stage == "ingest":
        figures = {"rows read": s.get("rows"), "new items": s.get("new_items"),
                   "already present": s.get("already_present"), "rejected": sum((s.get("rejected") or {}).values())}
    elif stage == "label":
        figures = {"items": s.get("n_items"), "LFs": s.get("n_lfs"), "coverage": s.get("coverage"),
                   "model": (s.get("model") or {}).get("model")}
        for split, acc in (s.get("accuracy") or {}).items():
            figures[f"accuracy on {split} (denoised)"] = acc.get("denoised")
            figures[f"accuracy on {split} (majority vote)"] = acc.get("majority_vote")
    elif stage == "detect":
        gold = s.get("gold") or {}
        figures = {"labels checked": s.get("n_checked"), "label issues": s.get("n_issues"), "detector": s.get("use"),
                   "gold label error rate": gold.get("label_error_rate"),
                   "issue precision (gold)": gold.get("issue_precision"),
                   "issue recall (gold)": gold.get("issue_recall"),
                   "accuracy of kept labels (gold)": gold.get("accuracy_kept")}
    elif stage == "reweight":
        gold = s.get("gold") or {}
        figures = {"strategy": s.get("strategy"), "items": s.get("n_items"), "mean weight": s.get("mean_weight"),
                   "below 0.5": s.get("n_flagged"), "AUROC of weights vs wrong labels (gold)": gold.get("auroc")}
    elif stage == "select":
        gold = s.get("gold") or {}
        figures = {"method": s.get("method"), "selected": s.get("n_selected"), "pool": s.get("n_pool"),
                   "label error rate of the selection (gold)": gold.get("selected_error_rate")}
    elif stage == "export":
        figures = {"rows": s.get("rows"), "shards": s.get("shards"), "directory": s.get("out_dir"),
                   "excluded": sum((s.get("excluded") or {}).values())}
    else:
        figures = {}
    if s.get("cached"):
        figures["reused run"] = s.get("run_id")
    return {k: _round(v) for k, v in figures.items() if v is not None and v == v}  # NaN: no gold to say


def stage_markdown(stage: str, summary: dict[str, Any]) -> str:
    scalars = {k: _round(v) for k, v in summary.items() if isinstance(v, (str, int, float, bool)) or v is None}
    rows = "\n".join(f"| {k} | {v} |" for k, v in scalars.items())
    return f"# thresher {stage}\n\n| field | value |\n|---|---|\n{rows}\n"


def pipeline_markdown(summaries: dict[str, Any]) -> str:
    """One table per stage of a pipeline run, headline figures only."""
    parts = [f"# thresher pipeline run {summaries.get('run_id')}\n"]
    for stage, summary in summaries.items():
        if not isinstance(summary, dict):
            continue
        rows = "\n".join(f"| {k} | {v} |" for k, v in headline(stage, summary).items())
        parts.append(f"## {stage} (run {summary.get('run_id')})\n\n| | |\n|---|---|\n{rows}\n")
    return "\n".join(parts)


def publish_stage(stage: str, summary: dict[str, Any], lf_table: list[dict] | None) -> None:
    """The stage summary as Prefect artifacts on the stage's flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(key=f"thresher-{stage}", markdown=stage_markdown(stage, summary),
                             description=f"thresher {stage} summary")
    if lf_table:
        table = [{k: _round(v) for k, v in row.items()} for row in lf_table]
        create_table_artifact(key="thresher-lf-summary", table=table, description="LF summary of the label run")


def publish_pipeline(summaries: dict[str, Any]) -> None:
    """The pipeline's one summary artifact, on the parent flow run, and its log line."""
    from prefect import get_run_logger
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(key="thresher-pipeline", markdown=pipeline_markdown(summaries),
                             description="thresher pipeline run: each stage's headline figures")
    get_run_logger().info("pipeline %s: %s", summaries.get("run_id"), "; ".join(
        f"{stage} " + ", ".join(f"{k} {v}" for k, v in headline(stage, s).items())
        for stage, s in summaries.items() if isinstance(s, dict)))


def run_line(flow: Any, flow_run: Any, state: Any) -> None:
    """A flow state hook: under ``thresher deploy``, one line per finished run on its terminal."""
    if os.environ.get(RUN_LINES) != "1" or getattr(flow_run, "parent_task_run_id", None):
        return  # not served, or a stage subflow of a pipeline run (the pipeline prints the line)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    detail = ""
    if state.is_completed():
        try:
            result = state.result(raise_on_failure=False)
        except Exception:  # a result that cannot be read back must not fail the run it reports on
            result = None
        if isinstance(result, dict):
            stage = flow.name.removeprefix("thresher-")
            stages = {k: v for k, v in result.items() if isinstance(v, dict)} if stage == "pipeline" else {stage: result}
            detail = "; ".join(f"{name} " + ", ".join(f"{k} {v}" for k, v in headline(name, s).items())
                               for name, s in stages.items())
    else:
        detail = (state.message or "").splitlines()[0] if state.message else ""
    print(f"thresher deploy: {when} {flow.name} run '{flow_run.name}' {state.name}"
          + (f": {detail}" if detail else ""), file=sys.stdout, flush=True)
