"""The export stage as the pipeline runs it: the shards (storage), then what curation changed for a
proxy model scored on held-out gold labels (reweighting.proxy), in the export's summary."""

from __future__ import annotations

import logging

import duckdb

from thresher.core.stages import StageContext
from thresher.reweighting.proxy import proxy_check
from thresher.storage.export import ExportConfig, ExportStage, ExportSummary
from thresher.storage.repo import input_run, latest_run

logger = logging.getLogger(__name__)


class CuratedExportStage(ExportStage):
    """Registry entry of the export stage: the shards, then the proxy check (``export.proxy_rows``)."""

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> ExportSummary:
        summary = super().run(con, context)
        config: ExportConfig = context.config
        if config.proxy_rows > 0:
            label_run = None
            if config.labels_from == "denoised":
                label_run = input_run(con, latest_run(con, "detect"), "detect") if config.use_detect else latest_run(con, "label")
            summary.proxy = proxy_check(con, out_dir=summary.out_dir, held_out=sorted(summary.held_out),
                                        labels_from=config.labels_from, label_run=label_run, rows=config.proxy_rows,
                                        progress=context.progress)
            if summary.proxy.get("warning"):
                logger.warning("Proxy model: %s", summary.proxy["warning"])
            elif summary.proxy.get("change"):
                logger.info("Proxy model on %d held-out gold items: accuracy %.3f raw -> %.3f curated",
                            summary.proxy["gold_items"], summary.proxy["raw"]["accuracy"],
                            summary.proxy["curated"]["accuracy"])
        return summary
