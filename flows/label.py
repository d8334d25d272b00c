"""Prefect flow: apply the LFs and denoise their votes into probabilistic labels."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from labeling.stage import label, label_version
from storage.repo import new_run_id, open_stage_run
from thresher.config import load_config


@flow(name="thresher-label")
def label_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False) -> dict:
    """Vote with every LF, store the LF summary and the label model's labels."""
    config = load_config(config_path, db=db)
    if config.labeling is None:
        raise ValueError(f"'{config_path}' has no 'labeling' section.")
    run_id = run_id or new_run_id()
    with open_stage_run(config.db, run_id=run_id, stage="label", config_hash=label_version(config.labeling),
                        flow_run_id=flow_run.id) as (con, record):
        summary = label(con, config.labeling, run_id=run_id, progress=progress)
        record.summary = summary.as_dict()
    get_run_logger().info("label %s: %s", run_id, record.summary)
    return {"run_id": run_id, **record.summary,
            "lf_summary": summary.lfs.reset_index(names="lf").to_dict(orient="records")}
