"""Prefect flow: apply the LFs and denoise their votes into probabilistic labels."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from labeling.stage import label, label_version
from storage.repo import new_run_id, run_stage
from thresher.config import load_config


@flow(name="thresher-label")
def label_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False) -> dict:
    """Vote with every LF, store the LF summary and the label model's labels."""
    config = load_config(config_path, db=db)
    if config.labeling is None:
        raise ValueError(f"'{config_path}' has no 'labeling' section.")
    lf_table: list[dict] = []

    def work(con, record) -> None:
        summary = label(con, config.labeling, run_id=record.run_id, progress=progress)
        record.summary = summary.as_dict()
        lf_table.extend(summary.lf_records())

    record = run_stage(config.db, work, run_id=run_id or new_run_id(), stage="label",
                       config_hash=label_version(config.labeling), flow_run_id=flow_run.id, snapshot=config.sql_snapshots)
    get_run_logger().info("label %s: %s", record.run_id, record.summary)
    return {"run_id": record.run_id, **record.summary, "lf_summary": lf_table}
