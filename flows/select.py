"""Prefect flow: choose the training subset that serves a target set (CoLoR-Filter, GIO, random)."""

from __future__ import annotations

import os

from prefect import flow

from flows.dask import ENCODED, stage_chunking
from flows.stage import HOOKS, run_stage_task
from reweighting.select.stage import select
from storage.repo import detector_in_use, latest_run, new_run_id
from thresher.config import load_config


@flow(name="thresher-select", **HOOKS)
def select_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False,
                force: bool = False) -> dict:
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
        with stage_chunking(config, needed=stage.feature_config.encoder in ENCODED) as chunking:
            record.summary = select(con, stage, classes=config.classes, run_id=record.run_id,
                                    label_run=record.input_run_id, detect_run=detect_run, detector=detector,
                                    progress=progress, chunking=chunking).as_dict()

    target_file = stage.target.file.path if stage.target.file is not None else None
    inputs = {"target_file": [target_file, *os.stat(target_file)[6:9]] if target_file else None}
    return run_stage_task(config, stage="select", run_id=run_id or new_run_id(), config_hash=stage.fingerprint(),
                          work=work, upstream=("label", "detect"), inputs=inputs, force=force, progress=progress)
