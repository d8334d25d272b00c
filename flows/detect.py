"""Prefect flow: detect label issues and derive per-item weights."""

from __future__ import annotations

from prefect import flow

from flows.dask import ENCODED, stage_chunking
from flows.stage import HOOKS, run_stage_task
from reweighting.stage import detect
from storage.repo import latest_run, new_run_id
from thresher.config import load_config


@flow(name="thresher-detect", **HOOKS)
def detect_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False,
                force: bool = False) -> dict:
    """Check the latest labels with confident learning; write noise scores and weights."""
    config = load_config(config_path, db=db)

    def work(con, record) -> None:
        record.input_run_id = latest_run(con, "label") if config.labels_from == "denoised" else None
        with stage_chunking(config, needed=config.detect.features.encoder in ENCODED) as chunking:
            record.summary = detect(con, config.detect, run_id=record.run_id, label_run=record.input_run_id,
                                    progress=progress, chunking=chunking).as_dict()

    return run_stage_task(config, stage="detect", run_id=run_id or new_run_id(), config_hash=config.detect.fingerprint(),
                          work=work, upstream=("label",), force=force, progress=progress)
