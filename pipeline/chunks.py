"""Chunked work on a dask.distributed cluster without Prefect: what local runs use.

The CLI with no Prefect server configured (and the Python API) runs a stage's chunks as plain Dask
futures: the workers need no Prefect API, so none of them starts a temporary Prefect server, which
every worker did when chunks were Prefect tasks and no ``PREFECT_API_URL`` reached it. Under a
Prefect server the flows run chunks as Prefect tasks instead (``flows/dask.py``), with the server's
address passed to the workers. Either way a progress bar counts the chunks as they finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from thresher.core.chunking import Chunking, MapChunks
from thresher.core.progress import ProgressCounter
from thresher.pipeline.config import DaskConfig, PipelineConfig

DESCRIPTION = "Chunks on the Dask cluster"


@contextmanager
def dask_client(config: DaskConfig, env: dict[str, str] | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on the scheduler at ``config.address``, or on a LocalCluster of
    ``n_workers`` processes (with ``env`` in their environment) closed on exit."""
    from distributed import Client, LocalCluster

    if config.address:
        with Client(config.address) as client:
            yield client
        return
    with LocalCluster(n_workers=config.n_workers, threads_per_worker=config.threads_per_worker, processes=True,
                      dashboard_address=None, env=env or {}) as cluster, Client(cluster) as client:
        yield client


@contextmanager
def plain_dask_map(config: DaskConfig, *, progress: bool = False) -> Iterator[tuple[MapChunks, int]]:
    """A ``map_chunks(function, arguments)`` running each call as a Dask future (results in order), and
    how many calls the cluster runs at once."""
    from distributed import as_completed

    with dask_client(config) as client:
        def map_chunks(function: Callable[..., Any], arguments: Sequence[tuple]) -> list[Any]:
            futures = [client.submit(function, *args, pure=False) for args in arguments]
            position = {future.key: i for i, future in enumerate(futures)}
            results: list[Any] = [None] * len(futures)
            with ProgressCounter(description=DESCRIPTION, total=len(futures), enabled=progress) as bar:
                for future in as_completed(futures):
                    results[position[future.key]] = future.result()
                    bar.advance()
            return results

        yield map_chunks, max(1, sum(client.nthreads().values()))


MapContext = Callable[..., AbstractContextManager[tuple[MapChunks, int]]]  # (DaskConfig, progress=) -> map


@contextmanager
def chunking_on(mapper: MapContext, config: PipelineConfig, needed: bool = True, *,
                progress: bool = False) -> Iterator[Chunking | None]:
    """The ``chunking`` a stage gets, its chunks mapped by ``mapper`` (plain futures, or Prefect tasks):
    None without a ``dask`` section (or when the stage has nothing to chunk, so no cluster is started)."""
    if config.dask is None or not needed:
        yield None
        return
    with mapper(config.dask, progress=progress) as (map_chunks, slots):
        yield Chunking(map_chunks, config.dask.chunk_rows, Path(config.dask.chunk_dir or Path(config.db).parent),
                       slots=slots)


def local_chunking(config: PipelineConfig, needed: bool = True, *, progress: bool = False
                   ) -> AbstractContextManager[Chunking | None]:
    """The ``chunking`` of a local run: chunks as plain Dask futures."""
    return chunking_on(plain_dask_map, config, needed, progress=progress)
