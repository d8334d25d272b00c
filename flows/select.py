"""Prefect flow: choose the training subset that serves a target set (CoLoR-Filter, GIO, random)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from reweighting.select.stage import select
from storage.repo import detector_in_use, latest_run, new_run_id, run_stage
from thresher.config import load_config


@flow(name="thresher-select")
def select_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False) -> dict:
    """Select from the latest labelled items towards the configured target; write ``selections``."""
    config = load_config(config_path, db=db)
    if config.select is None:
        raise ValueError(f"'{config_path}' has no 'select' section.")
    stage = config.select

    def work(con, record) -> None:
        needs_label_run = config.labels_from == "denoised" or stage.target.labels == "denoised"
        record.input_run_id = latest_run(con, "label") if needs_label_run else None
        detect_run = latest_run(con, "detect") if stage.drop_label_issues else None
        detector = detector_in_use(con, detect_run) if detect_run else ""
        record.summary = select(con, stage, classes=config.classes, run_id=record.run_id, label_run=record.input_run_id,
                                detect_run=detect_run, detector=detector, progress=progress).as_dict()

    record = run_stage(config.db, work, run_id=run_id or new_run_id(), stage="select",
                       config_hash=stage.fingerprint(), flow_run_id=flow_run.id, snapshot=config.sql_snapshots)
    get_run_logger().info("select %s: %s", record.run_id, record.summary)
    return {"run_id": record.run_id, **record.summary}
