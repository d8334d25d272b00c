"""Prefect flow: write the curated, weighted set as Parquet shards plus a manifest."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from storage.export import export
from storage.repo import input_run, latest_run, new_run_id, open_stage_run
from thresher.config import load_config


@flow(name="thresher-export")
def export_flow(config_path: str, db: str | None = None, out_dir: str | None = None,
                run_id: str | None = None, progress: bool = False) -> dict:
    """Export the items kept by the latest detect run, with their labels and weights."""
    config = load_config(config_path, db=db, out_dir=out_dir)
    run_id = run_id or new_run_id()
    with open_stage_run(config.db, run_id=run_id, stage="export", config_hash=config.export.fingerprint(),
                        flow_run_id=flow_run.id) as (con, record):
        detect_run = latest_run(con, "detect")
        label_run = input_run(con, detect_run, "detect") if config.labels_from == "denoised" else None
        summary = export(con, config.export, classes=config.classes, run_id=run_id,
                         label_run=label_run, detect_run=detect_run, progress=progress)
        record.input_run_id = detect_run
        record.summary = summary.as_dict()
    get_run_logger().info("export %s: %s", run_id, record.summary)
    return {"run_id": run_id, **record.summary}
