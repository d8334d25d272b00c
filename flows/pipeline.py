"""Prefect flow: the whole pipeline, each configured stage a subflow sharing one run id."""

from prefect import flow

from thresher.core.stages import stage_spec
from thresher.flows.artifacts import publish_pipeline
from thresher.flows.stage import HOOKS, STAGE_FLOWS
from thresher.pipeline.config import PipelineConfig, load_config
from thresher.storage.repo import new_run_id


@flow(name="thresher-pipeline", **HOOKS)
def pipeline_flow(config_path: str | None = None, db: str | None = None, out_dir: str | None = None,
                  run_id: str | None = None, progress: bool = False, force: bool = False,
                  config: PipelineConfig | None = None) -> dict:
    """Every configured stage, in the registry's order, under one run id.

    The config is read once (or given, validated, as ``config``) and passed to each stage subflow. A
    stage whose config and inputs are unchanged since its last completed run is reused; ``force``
    recomputes every stage.
    """
    config = config if config is not None else load_config(config_path, db=db, out_dir=out_dir)
    run_id = run_id or new_run_id()
    summaries: dict = {"run_id": run_id}
    for name in config.stage_names():
        summaries[name] = STAGE_FLOWS[name](config=config, run_id=run_id, progress=progress,
                                            force=force and stage_spec(name).cached)
    publish_pipeline(summaries)
    return summaries
