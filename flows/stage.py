"""One generic Prefect flow per stage, made from the stage registry: it runs the stage as a Prefect task.

The stage's own work, its cache check and its run record are :func:`thresher.pipeline.runner.run_stage`;
this module adds only what Prefect gives: the task (retried on the stage's transient errors), the
summary artifacts, the log line, the Dask cluster for chunked work and the ``thresher deploy`` line.
A flow takes the validated config (``config``) from a parent flow or the CLI, or reads ``config_path``.
"""


from collections.abc import Callable
from functools import partial
from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from thresher.core.stages import NAMES, RETRY_DELAY_SECONDS, stage_spec
from thresher.flows.artifacts import publish_stage, run_line
from thresher.flows.dask import stage_chunking
from thresher.pipeline.config import PipelineConfig, load_config
from thresher.pipeline.runner import run_stage
from thresher.storage.repo import new_run_id

# Every flow's state hooks: the line `thresher deploy` prints per run.
HOOKS = {"on_completion": [run_line], "on_failure": [run_line], "on_crashed": [run_line]}
# Called in this process with (stage, summary) as each stage finishes: the CLI prints them as they come.
STAGE_LISTENERS: list[Callable[[str, dict[str, Any]], None]] = []


@task(name="thresher-stage", cache_policy=NO_CACHE)  # reuse is decided by the run records (pipeline/runner.py)
def _stage_task(config: PipelineConfig, name: str, run_id: str, progress: bool, force: bool) -> dict:
    return run_stage(config, name, run_id=run_id, progress=progress, force=force, flow_run_id=flow_run.id,
                     chunking=partial(stage_chunking, config, progress=progress))


def run_stage_task(config: PipelineConfig, name: str, *, run_id: str, progress: bool = False,
                   force: bool = False) -> dict[str, Any]:
    """Run one stage as a Prefect task in the current flow; publish and log its summary."""
    code = stage_spec(name).load()
    retries = code.retries(config.stage_config(name)) if code.transient else 0

    def transient(task: Any, task_run: Any, state: Any) -> bool:
        return isinstance(state.data, code.transient)

    stage_task = _stage_task.with_options(name=f"thresher-{name}", retries=retries, retry_delay_seconds=RETRY_DELAY_SECONDS,
                                          retry_condition_fn=transient)
    summary = stage_task(config, name, run_id, progress, force)
    logger = get_run_logger()
    if summary.get("cached"):
        logger.info("%s: inputs and config unchanged; reusing run %s (cached)", name, summary["run_id"])
    publish_stage(name, summary, summary.get("lf_summary"))
    logger.info("%s %s: %s", name, summary["run_id"], {k: v for k, v in summary.items() if k != "lf_summary"})
    for listener in STAGE_LISTENERS:
        listener(name, summary)
    return summary


def _stage_flow(name: str) -> Flow:
    def stage_flow(config_path: str | None = None, db: str | None = None, out_dir: str | None = None,
                   run_id: str | None = None, progress: bool = False, force: bool = False,
                   config: PipelineConfig | None = None) -> dict:
        config = config if config is not None else load_config(config_path, db=db, out_dir=out_dir)
        if config.stage_config(name) is None:
            raise ValueError(f"'{config_path or 'the config'}' has no '{stage_spec(name).section}' section.")
        return run_stage_task(config, name, run_id=run_id or new_run_id(), progress=progress, force=force)

    # Prefect serves a flow by its module path: each must be a module attribute under its own name.
    stage_flow.__name__ = stage_flow.__qualname__ = f"{name}_flow"
    stage_flow.__doc__ = f"Run the {name} stage of the pipeline config (see ``thresher {name} --help``)."
    return flow(name=f"thresher-{name}", description=stage_spec(name).help, **HOOKS)(stage_flow)


STAGE_FLOWS: dict[str, Flow] = {name: _stage_flow(name) for name in NAMES}
ingest_flow, label_flow, detect_flow, reweight_flow, select_flow, export_flow = (STAGE_FLOWS[n] for n in NAMES)
