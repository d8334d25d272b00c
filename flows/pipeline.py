"""Prefect flow: the whole pipeline, each stage a subflow sharing one run id."""

from __future__ import annotations

from prefect import flow

from flows.detect import detect_flow
from flows.export import export_flow
from flows.ingest import ingest_flow
from flows.label import label_flow
from flows.reweight import reweight_flow
from flows.select import select_flow
from flows.artifacts import publish_pipeline
from flows.stage import HOOKS
from storage.repo import new_run_id
from thresher.config import load_config


@flow(name="thresher-pipeline", **HOOKS)
def pipeline_flow(config_path: str, db: str | None = None, out_dir: str | None = None,
                  run_id: str | None = None, progress: bool = False, force: bool = False) -> dict:
    """Ingest, label, detect, reweight and select (when configured) and export, in order, under one run id.

    A stage whose config and inputs are unchanged since its last completed run is not recomputed
    (Prefect task caching, see flows/stage.py); ``force`` recomputes every stage.
    """
    config = load_config(config_path, db=db, out_dir=out_dir)
    run_id = run_id or new_run_id()
    summaries = {"run_id": run_id, "ingest": ingest_flow(config_path, db=db, run_id=run_id, progress=progress, force=force)}
    if config.labeling is not None:
        summaries["label"] = label_flow(config_path, db=db, run_id=run_id, progress=progress, force=force)
    summaries["detect"] = detect_flow(config_path, db=db, run_id=run_id, progress=progress, force=force)
    if config.reweight is not None:
        summaries["reweight"] = reweight_flow(config_path, db=db, run_id=run_id, progress=progress, force=force)
    if config.select is not None:
        summaries["select"] = select_flow(config_path, db=db, run_id=run_id, progress=progress, force=force)
    summaries["export"] = export_flow(config_path, db=db, out_dir=out_dir, run_id=run_id, progress=progress)
    publish_pipeline(summaries)
    return summaries
