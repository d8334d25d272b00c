"""Prefect flow: detect label issues and derive per-item weights."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from reweighting.stage import detect
from storage.repo import latest_run, new_run_id, open_stage_run
from thresher.config import load_config


@flow(name="thresher-detect")
def detect_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False) -> dict:
    """Check the latest labels with confident learning; write noise scores and weights."""
    config = load_config(config_path, db=db)
    run_id = run_id or new_run_id()
    with open_stage_run(config.db, run_id=run_id, stage="detect", config_hash=config.detect.fingerprint(),
                        flow_run_id=flow_run.id) as (con, record):
        label_run = latest_run(con, "label") if config.labels_from == "denoised" else None
        summary = detect(con, config.detect, run_id=run_id, label_run=label_run, progress=progress)
        record.input_run_id = label_run
        record.summary = summary.as_dict()
    get_run_logger().info("detect %s: %s", run_id, record.summary)
    return {"run_id": run_id, **record.summary}
