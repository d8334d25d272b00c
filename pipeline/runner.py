"""Running one stage of a validated pipeline config: the cache check, the recorded run, the summary.

The CLI (through the Prefect flows) and the Python API both run stages here. A stage whose config
and inputs are unchanged since a completed run is not recomputed: the cache key hashes the stage's
version (its config fingerprint), a snapshot of its input data (the database's identity, the items,
the latest run of each upstream stage; see :func:`thresher.storage.state.database_state`) and its
outside inputs (files); it is stored in the run's summary, and a completed run recorded with the same
key is returned instead (``cached: true``). A deleted database has no such run, so the stage runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from thresher.core.stages import StageContext, stage_spec

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking
    from thresher.pipeline.config import PipelineConfig

# chunking(needed) -> a context giving the stage's Chunking (None: this process)
ChunkingFactory = Callable[[bool], AbstractContextManager["Chunking | None"]]


def in_process(needed: bool) -> AbstractContextManager[None]:
    """No cluster: every stage computes in this process."""
    return nullcontext(None)


def cache_key(stage: str, version: str, inputs: dict[str, Any]) -> str:
    text = json.dumps({"stage": stage, "config": version, "inputs": inputs}, sort_keys=True, default=str)
    return f"thresher-{stage}-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def stage_key(config: PipelineConfig, name: str, version: str) -> str | None:
    """The cache key of stage ``name`` (at ``version``) now, or None for a stage that is never cached."""
    from thresher.storage.state import database_state

    spec = stage_spec(name)
    if not spec.cached:
        return None
    state = {} if spec.upstream is None else database_state(config.db, spec.upstream, timeout=config.db_lock_timeout)
    return cache_key(name, version, {**state, **spec.load().cache_inputs(config.stage_config(name))})


def run_stage(
    config: PipelineConfig, name: str, *, run_id: str, progress: bool = False, force: bool = False,
    flow_run_id: str | None = None, chunking: ChunkingFactory = in_process,
) -> dict[str, Any]:
    """Run stage ``name`` of ``config`` as one recorded run (or reuse an unchanged one); return its summary.

    ``force`` recomputes even when unchanged. ``chunking(needed)`` gives the stage's
    :class:`~thresher.core.chunking.Chunking` (a Dask cluster), asked only when the stage has work to chunk.
    """
    from thresher.storage.repo import run_stage as record_stage
    from thresher.storage.state import recorded_run

    spec = stage_spec(name)
    code, section = spec.load(), config.stage_config(name)
    if section is None:
        raise ValueError(f"The config has no '{spec.section}' section, which the {name} stage needs.")
    version = code.version(section)
    key = stage_key(config, name, version)
    if key is not None and not force and not code.must_rerun(config.db):
        recorded = recorded_run(config.db, name, key, timeout=config.db_lock_timeout)
        if recorded is not None:
            return {**recorded, **code.extra(config.db, recorded["run_id"]), "cached": True}

    def work(con: Any, record: Any) -> None:
        with chunking(code.uses_cluster(section)) as chunks:
            context = StageContext(run_id=record.run_id, config=section, classes=list(config.classes),
                                   progress=progress, chunking=chunks)
            record.summary = code.run(con, context).as_dict()
        record.input_run_id = context.input_run_id
        if key is not None:
            record.summary["cache_key"] = key

    record = record_stage(config.db, work, run_id=run_id, stage=name, config_hash=version,
                          flow_run_id=flow_run_id, snapshot=config.sql_snapshots,
                          lock_timeout=config.db_lock_timeout, progress=progress)
    return {"run_id": record.run_id, **record.summary, **code.extra(config.db, record.run_id)}
