"""Prefect flow: learn per-item loss weights while training (STORM or a loss rule)."""

from __future__ import annotations

from prefect import flow

from flows.dask import ENCODED, stage_chunking
from flows.stage import HOOKS, run_stage_task
from reweighting.reweight import reweight
from storage.repo import latest_run, new_run_id
from thresher.config import load_config


@flow(name="thresher-reweight", **HOOKS)
def reweight_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False,
                  force: bool = False) -> dict:
    """Train on the latest labels with the configured weighting strategy; write the weights."""
    config = load_config(config_path, db=db)
    if config.reweight is None:
        raise ValueError(f"'{config_path}' has no 'reweight' section.")
    stage = config.reweight

    def work(con, record) -> None:
        record.input_run_id = latest_run(con, "label") if config.labels_from == "denoised" else None
        with stage_chunking(config, needed=stage.features.encoder in ENCODED) as chunking:
            record.summary = reweight(con, stage, run_id=record.run_id, label_run=record.input_run_id,
                                      progress=progress, chunking=chunking).as_dict()

    return run_stage_task(config, stage="reweight", run_id=run_id or new_run_id(), config_hash=stage.fingerprint(),
                          work=work, upstream=("label",), force=force, progress=progress)
