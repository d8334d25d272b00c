"""Prefect flow: apply the LFs and denoise their votes into probabilistic labels."""

from __future__ import annotations

import asyncio

import aiohttp
from prefect import flow

from flows.dask import stage_chunking
from flows.stage import HOOKS, run_stage_task, stored_lf_table, unfinished_llm_work
from labeling.stage import label, label_version
from storage.repo import new_run_id
from thresher.config import load_config

# What a task-level retry can fix: the network, not a refused key or a missing model (LLMBackendError).
TRANSIENT = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


@flow(name="thresher-label", **HOOKS)
def label_flow(config_path: str, db: str | None = None, run_id: str | None = None, progress: bool = False,
               force: bool = False) -> dict:
    """Vote with every LF, store the LF summary and the label model's labels."""
    config = load_config(config_path, db=db)
    if config.labeling is None:
        raise ValueError(f"'{config_path}' has no 'labeling' section.")

    def work(con, record) -> None:
        with stage_chunking(config) as chunking:
            record.summary = label(con, config.labeling, run_id=record.run_id, progress=progress,
                                   chunking=chunking).as_dict()

    # Prompts that failed or were over budget last time are asked again: that run is not reused.
    force = force or unfinished_llm_work(config.db)
    networked = config.labeling.llm is not None and config.labeling.llm.backend == "openai"
    return run_stage_task(config, stage="label", run_id=run_id or new_run_id(), config_hash=label_version(config.labeling),
                          work=work, force=force, retries=1 if networked else 0, retry_on=TRANSIENT,
                          extra=lambda run: {"lf_summary": stored_lf_table(config.db, run)}, progress=progress)
