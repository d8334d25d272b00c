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
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from thresher.core.stages import StageContext, stage_spec

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking
    from thresher.pipeline.config import PipelineConfig

# chunking(needed) -> a context giving the stage's Chunking (None: this process)
ChunkingFactory = Callable[[bool], AbstractContextManager["Chunking | None"]]

logger = logging.getLogger(__name__)


def in_process(needed: bool) -> AbstractContextManager[None]:
    """No cluster: every stage computes in this process."""
    return nullcontext(None)


def cache_key(stage: str, version: str, inputs: dict[str, Any]) -> str:
    text = json.dumps({"stage": stage, "config": version, "inputs": inputs}, sort_keys=True, default=str)
    return f"thresher-{stage}-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _record_failure(config: PipelineConfig, name: str, run_id: str, flow_run_id: str | None, error: Exception) -> None:
    """A ``failed`` run row for a stage that failed before its work began (its config could not be
    built: an LF module that does not import), so the database says what happened, as for any failure."""
    from thresher.storage.repo import run_stage as record_stage

    def fail(con: Any, record: Any) -> None:
        raise error

    try:
        record_stage(config.db, fail, run_id=run_id, stage=name, config_hash="", flow_run_id=flow_run_id,
                     snapshot=False, lock_timeout=config.db_lock_timeout, progress=False)
    except Exception as recorded:
        if recorded is not error:  # the database could not take the row: the stage's own error still goes up
            logger.warning("Could not record the failed %s run: %s", name, recorded)


def run_stage(
    config: PipelineConfig, name: str, *, run_id: str, progress: bool = False, force: bool = False,
    flow_run_id: str | None = None, chunking: ChunkingFactory = in_process,
) -> dict[str, Any]:
    """Run stage ``name`` of ``config`` as one recorded run (or reuse an unchanged one); return its summary.

    ``force`` recomputes even when unchanged. ``chunking(needed)`` gives the stage's
    :class:`~thresher.core.chunking.Chunking` (a Dask cluster), asked only when the stage has work to chunk.
    The database is opened once read-only before the stage (its input state and a recorded run with
    the same key) and once to write.
    """
    from thresher.storage.repo import run_stage as record_stage
    from thresher.storage.state import NO_DATABASE, database_state, read_only, recorded_run

    spec = stage_spec(name)
    code, section = spec.load(), config.stage_config(name)
    if section is None:
        raise ValueError(f"The config has no '{spec.section}' section, which the {name} stage needs.")
    try:
        version = code.version(section)  # builds the LFs: imports Python LF modules
        inputs = code.cache_inputs(section)
    except Exception as exc:
        _record_failure(config, name, run_id, flow_run_id, exc)
        raise

    def lookup(con: Any) -> tuple[str, dict[str, Any] | None]:
        key = cache_key(name, version, {**({} if spec.upstream is None else database_state(con, spec.upstream)),
                                        **inputs})
        if force or code.must_rerun(con):
            return key, None
        recorded = recorded_run(con, name, key)
        if recorded is not None:
            recorded = {**recorded, **code.extra(con, recorded["run_id"]), "cached": True}
        return key, recorded

    key: str | None = None
    if spec.cached:
        state = {} if spec.upstream is None else NO_DATABASE
        key, recorded = read_only(config.db, lookup, (cache_key(name, version, {**state, **inputs}), None),
                                  timeout=config.db_lock_timeout)
        if recorded is not None:
            return recorded
    extra: dict[str, Any] = {}

    def work(con: Any, record: Any) -> None:
        with chunking(code.uses_cluster(section)) as chunks:
            context = StageContext(run_id=record.run_id, config=section, classes=list(config.classes),
                                   progress=progress, chunking=chunks)
            record.summary = code.run(con, context).as_dict()
        record.input_run_id = context.input_run_id
        if key is not None:
            record.summary["cache_key"] = key
        extra.update(code.extra(con, record.run_id))

    record = record_stage(config.db, work, run_id=run_id, stage=name, config_hash=version,
                          flow_run_id=flow_run_id, snapshot=config.sql_snapshots,
                          lock_timeout=config.db_lock_timeout, progress=progress)
    return {"run_id": record.run_id, **record.summary, **extra}
