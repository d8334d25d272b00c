"""Prefect flows: one per stage (made from the stage registry) and the parent pipeline flow. They only wire stages."""

from thresher.flows.pipeline import pipeline_flow
from thresher.flows.stage import STAGE_FLOWS, detect_flow, export_flow, ingest_flow, label_flow, reweight_flow, select_flow

__all__ = ["STAGE_FLOWS", "ingest_flow", "label_flow", "detect_flow", "reweight_flow", "select_flow", "export_flow",
           "pipeline_flow"]
