"""Prefect flow: ingest the configured sources into the project database."""

from __future__ import annotations

from prefect import flow

from flows.stage import HOOKS, run_stage_task, source_files
from storage.ingest import ingest
from storage.repo import new_run_id
from thresher.config import load_config


@flow(name="thresher-ingest", **HOOKS)
def ingest_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False,
                force: bool = False) -> dict:
    """Load every source file into ``items``; bad rows go to ``rejects``."""
    config = load_config(config_path, db=db)
    stage = config.ingest_config()

    def work(con, record) -> None:
        record.summary = ingest(con, stage, progress=progress).as_dict()

    return run_stage_task(config, stage="ingest", run_id=run_id or new_run_id(), config_hash=stage.fingerprint(),
                          work=work, upstream=None, inputs={"files": source_files(config)}, force=force, progress=progress)
