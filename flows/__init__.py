"""Prefect flows: one per stage and a parent pipeline flow. They only wire stage functions."""

from flows.detect import detect_flow
from flows.export import export_flow
from flows.ingest import ingest_flow
from flows.label import label_flow
from flows.pipeline import pipeline_flow
from flows.reweight import reweight_flow
from flows.select import select_flow

__all__ = ["ingest_flow", "label_flow", "detect_flow", "reweight_flow", "select_flow", "export_flow", "pipeline_flow"]
