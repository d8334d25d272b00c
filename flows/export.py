"""Prefect flow: write the curated, weighted set as Parquet shards plus a manifest."""

from __future__ import annotations

from prefect import flow

from flows.stage import HOOKS, run_stage_task
from storage.export import export
from storage.repo import detector_in_use, input_run, latest_run, new_run_id
from thresher.config import load_config


@flow(name="thresher-export", **HOOKS)
def export_flow(config_path: str, db: str | None = None, out_dir: str | None = None,
                run_id: str | None = None, progress: bool = False, force: bool = False) -> dict:
    """Export the items kept by the latest detect run, with their labels and the chosen weights."""
    config = load_config(config_path, db=db, out_dir=out_dir)

    def work(con, record) -> None:
        record.input_run_id = detect_run = latest_run(con, "detect")
        label_run = input_run(con, detect_run, "detect") if config.labels_from == "denoised" else None
        detector = detector_in_use(con, detect_run)
        weight_stage = config.export.weights_from or "detect"
        weight_run = detect_run if weight_stage == "detect" else latest_run(con, "reweight")
        select_run = latest_run(con, "select") if config.export.selected_only else None
        record.summary = export(con, config.export, classes=config.classes, run_id=record.run_id,
                                label_run=label_run, detect_run=detect_run, detector=detector,
                                weight_run=weight_run, weight_stage=weight_stage,
                                select_run=select_run, progress=progress).as_dict()

    # Never cached: the shards on disk may have been moved or deleted since; exporting is cheap.
    return run_stage_task(config, stage="export", run_id=run_id or new_run_id(), config_hash=config.export.fingerprint(),
                          work=work, cache=False, progress=progress)
