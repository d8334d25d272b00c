"""Prefect flow: ingest the configured sources into the project database."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from storage.ingest import ingest
from storage.repo import new_run_id, run_stage
from thresher.config import load_config


@flow(name="thresher-ingest")
def ingest_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False) -> dict:
    """Load every source file into ``items``; bad rows go to ``rejects``."""
    config = load_config(config_path, db=db)
    stage = config.ingest_config()

    def work(con, record) -> None:
        record.summary = ingest(con, stage, progress=progress).as_dict()

    record = run_stage(config.db, work, run_id=run_id or new_run_id(), stage="ingest",
                       config_hash=stage.fingerprint(), flow_run_id=flow_run.id, snapshot=config.sql_snapshots)
    get_run_logger().info("ingest %s: %s", record.run_id, record.summary)
    return {"run_id": record.run_id, **record.summary}
