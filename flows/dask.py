"""Run chunks of a stage's heavy work on a dask.distributed cluster through Prefect's Dask task runner.

Each chunk is a Prefect task (visible in the UI) submitted to a ``DaskTaskRunner``: a LocalCluster
of ``n_workers`` processes, or the scheduler at ``address``. Results come back to this process,
which alone writes the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from thresher.core.chunking import Chunking
from thresher.pipeline.config import DaskConfig, PipelineConfig




@task(name="thresher-chunk", cache_policy=NO_CACHE)  # the stage is cached; its chunks need not hash inputs
def _chunk(function: Callable[..., Any], arguments: tuple) -> Any:
    return function(*arguments)


@contextmanager
def dask_map(config: DaskConfig) -> Iterator[tuple[Callable[[Callable[..., Any], Sequence[tuple]], list[Any]], int]]:
    """A ``map_chunks(function, arguments)`` that runs each call as a Prefect task on the cluster, and
    how many calls the cluster runs at once (its worker threads)."""
    from prefect_dask import DaskTaskRunner

    if config.address:
        runner = DaskTaskRunner(address=config.address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": config.n_workers, "processes": True,
                                                "threads_per_worker": config.threads_per_worker,
                                                "dashboard_address": None})

    with runner:
        def map_chunks(function: Callable[..., Any], arguments: Sequence[tuple]) -> list[Any]:
            futures = [runner.submit(_chunk, parameters={"function": function, "arguments": args})
                       for args in arguments]
            return [future.result() for future in futures]

        yield map_chunks, max(1, sum(runner.client.nthreads().values()))


@contextmanager
def stage_chunking(config: PipelineConfig, needed: bool = True) -> Iterator[Chunking | None]:
    """The ``chunking`` a stage gets: None without a ``dask`` section (or when the stage has nothing
    to chunk, so no cluster is started for it)."""
    if config.dask is None or not needed:
        yield None
        return
    with dask_map(config.dask) as (map_chunks, slots):
        yield Chunking(map_chunks, config.dask.chunk_rows, Path(config.dask.chunk_dir or Path(config.db).parent),
                       slots=slots)
