"""Local runs without Prefect: what the CLI does when no Prefect server is configured.

Prefect 3 runs a flow only against an API; with none configured it starts a temporary server in
every process (16 s on an idle 2-core machine, a minute on a busy one), which made each CLI command
pay that start-up for a few seconds of work. Without a configured server thresher runs the stages
here instead, in this process, exactly as the flows would (the same :func:`run_stage`, the same
cached reuse, the same retries on a stage's transient errors) and as the Python API does; only the
Prefect records are missing (thresher's own ``runs`` table has every run). With ``PREFECT_API_URL``
set (or a Prefect profile's), or ``THRESHER_PREFECT=ephemeral``, the CLI runs the flows instead. A
``dask`` section runs the chunks on the cluster as plain Dask futures (:mod:`thresher.pipeline.chunks`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from functools import partial

from thresher.core.stages import RETRY_DELAY_SECONDS, stage_spec
from thresher.pipeline.chunks import local_chunking
from thresher.pipeline.config import PipelineConfig
from thresher.pipeline.runner import run_stage

logger = logging.getLogger(__name__)

StageListener = Callable[[str, dict[str, Any]], None]


def run_stage_retrying(config: PipelineConfig, name: str, *, run_id: str, progress: bool, force: bool) -> dict[str, Any]:
    """:func:`run_stage`, retried as its flow's task would be on the stage's transient errors."""
    code = stage_spec(name).load()
    retries = code.retries(config.stage_config(name)) if code.transient else 0
    for attempt in range(retries + 1):
        try:
            return run_stage(config, name, run_id=run_id, progress=progress, force=force,
                             chunking=partial(local_chunking, config, progress=progress))
        except code.transient as exc:
            if attempt == retries:
                raise
            logger.warning("%s failed (%s: %s); retrying in %d s (%d of %d)", name, type(exc).__name__, exc,
                           RETRY_DELAY_SECONDS, attempt + 1, retries)
            time.sleep(RETRY_DELAY_SECONDS)
    raise AssertionError("unreachable")


def run_local(config: PipelineConfig, stage: str, *, run_id: str, progress: bool = False, force: bool = False,
              on_stage: StageListener | None = None) -> dict[str, Any]:
    """Run the pipeline (``stage="pipeline"``: every configured stage, one run id) or one stage; the
    summary (the pipeline's: ``run_id`` and each stage's). ``on_stage(name, summary)`` is called as
    each stage ends, as the flows' listeners are."""
    names = config.stage_names() if stage == "pipeline" else [stage]
    summaries: dict[str, Any] = {"run_id": run_id}
    for name in names:
        summary = run_stage_retrying(config, name, run_id=run_id, progress=progress,
                                     force=force and (stage != "pipeline" or stage_spec(name).cached))
        if on_stage is not None:
            on_stage(name, summary)
        summaries[name] = summary
    return summaries if stage == "pipeline" else summaries[stage]
