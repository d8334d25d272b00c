"""Run chunks of a stage's heavy work on a dask.distributed cluster through Prefect's Dask task runner.

Each chunk is a Prefect task (visible in the UI) submitted to a ``DaskTaskRunner``: a LocalCluster
of ``n_workers`` processes, or the scheduler at ``address``. Results come back to this process,
which alone writes the database. A task needs a Prefect API where it runs: the LocalCluster's
workers get the flow's own API address (before, each started a temporary server of its own);
workers of a scheduler at ``address`` are started by you, with ``PREFECT_API_URL`` set to the same
server (README, "Large datasets"). Local runs without a server use plain Dask futures instead
(:mod:`thresher.pipeline.chunks`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from thresher.core.chunking import Chunking
from thresher.core.progress import ProgressCounter
from thresher.pipeline.chunks import DESCRIPTION, chunking_on
from thresher.pipeline.config import DaskConfig, PipelineConfig




@task(name="thresher-chunk", cache_policy=NO_CACHE)  # the stage is cached; its chunks need not hash inputs
def _chunk(function: Callable[..., Any], arguments: tuple) -> Any:
    return function(*arguments)


def _api_env() -> dict[str, str]:
    """The environment that points a worker at the Prefect API this process reports to."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        url = str(client.api_url).rstrip("/")
    return {"PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@contextmanager
def dask_map(config: DaskConfig, *, progress: bool = False
             ) -> Iterator[tuple[Callable[[Callable[..., Any], Sequence[tuple]], list[Any]], int]]:
    """A ``map_chunks(function, arguments)`` that runs each call as a Prefect task on the cluster, and
    how many calls the cluster runs at once (its worker threads)."""
    from prefect_dask import DaskTaskRunner

    if config.address:
        runner = DaskTaskRunner(address=config.address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": config.n_workers, "processes": True,
                                                "threads_per_worker": config.threads_per_worker,
                                                "dashboard_address": None, "env": _api_env()})

    with runner:
        def map_chunks(function: Callable[..., Any], arguments: Sequence[tuple]) -> list[Any]:
            futures = [runner.submit(_chunk, parameters={"function": function, "arguments": args})
                       for args in arguments]
            with ProgressCounter(description=DESCRIPTION, total=len(futures), enabled=progress) as bar:
                results = []
                for future in futures:
                    results.append(future.result())
                    bar.advance()
            return results

        yield map_chunks, max(1, sum(runner.client.nthreads().values()))


def stage_chunking(config: PipelineConfig, needed: bool = True, *, progress: bool = False
                   ) -> AbstractContextManager[Chunking | None]:
    """The ``chunking`` a stage gets under Prefect: chunks as Prefect tasks on the cluster."""
    return chunking_on(dask_map, config, needed, progress=progress)
