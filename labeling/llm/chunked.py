"""Prompts answered in chunks on other processes or machines (e.g. a Dask cluster).

The driver splits the prompts a run must send into one chunk per cluster slot (at most
``chunk_rows`` each). A worker builds the backend from the config (reading the API key from its
own environment: a key never travels with the task), answers its chunk, and writes the answers
every half second to a Parquet part in the spool directory (written, then renamed: a part is
whole or absent). The driver alone writes the database: it stores new parts every half second
while the chunks run, so answers reach ``llm_cache`` as they arrive, as in a single-process run.

Parts are deleted when the run ends. Until then they make the run crash-safe: parts left by a
killed driver are stored by the next run before it plans (a call stored twice is recognised by
its run and key), and a chunk that Dask re-runs after its worker died skips the prompts its
earlier attempt answered.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from thresher.core.chunking import Chunking
from thresher.labeling.llm.backend import Backend, Budget, LLMBackendError, Request, Result
from thresher.labeling.llm.config import LLMConfig, OpenAIBackendConfig
from thresher.labeling.llm.store import answers_table, store_answers

SPOOL_SUFFIX = ".llm-spool"
POLL_SECONDS = 0.5


def spool_directory(con: duckdb.DuckDBPyConnection, directory: Path | None) -> Path:
    """``<directory>/<database name>.llm-spool``; ``directory`` defaults to the database's folder."""
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]
    if not path:  # an in-memory database: nothing can outlive the process anyway
        return Path(directory or os.getcwd()) / f"memory-{os.getpid()}{SPOOL_SUFFIX}"
    database = Path(path)
    return Path(directory or database.parent) / f"{database.name}{SPOOL_SUFFIX}"


class Spool:
    """The parts in a spool directory that this process has not stored yet."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stored: set[str] = set()

    def store_new(self, con: duckdb.DuckDBPyConnection) -> pa.Table | None:
        """Store the parts not stored yet, in one transaction; returns what was stored (None: nothing)."""
        if not self.directory.is_dir():
            return None
        parts = [p for p in sorted(self.directory.glob("*.parquet")) if p.name not in self._stored]
        if not parts:
            return None
        answers = pa.concat_tables([pq.read_table(part) for part in parts])
        store_answers(con, answers, once=True)
        self._stored.update(part.name for part in parts)
        return answers

    def clear(self) -> None:
        """Delete every part, whole or half-written (all were stored by :meth:`store_new`)."""
        if self.directory.is_dir():
            for part in self.directory.iterdir():
                part.unlink(missing_ok=True)
            self.directory.rmdir()


@dataclass
class ChunkOutcome:
    """What one chunk did besides its spooled answers."""

    tokens: int
    stopped: str | None  # its share of the token budget ran out
    fatal: str | None  # the backend refused to answer at all (e.g. HTTP 401)


def answer_chunk(config: LLMConfig, requests: Sequence[Request], spool: str, name: str, run_id: str,
                 max_tokens: int | None) -> ChunkOutcome:
    """On a worker: answer ``requests``, spooling the answers as ``<name>-<n>.parquet`` parts, one per
    ``POLL_SECONDS`` (so a worker that dies loses at most that much of its answers)."""
    from thresher.labeling.llm.factory import build_backend

    directory = Path(spool)
    earlier = sorted(directory.glob(f"{name}-*.parquet"))  # an earlier attempt at this chunk, if Dask re-ran it
    done = {key for part in earlier for key in pq.read_table(part, columns=["key"]).column("key").to_pylist()}
    todo = [r for r in requests if r.key not in done]
    by_key = {r.key: r for r in todo}
    backend = build_backend(config)
    backend.check()
    budget = Budget(None, max_tokens)
    count = len(earlier)

    def write(results: list[Result]) -> None:
        nonlocal count
        final = directory / f"{name}-{count:06d}.parquet"
        partial = final.with_suffix(".tmp")
        pq.write_table(answers_table(backend, run_id, results, by_key), partial)
        os.replace(partial, final)
        count += 1

    async def drive() -> None:
        pending: list[Result] = []
        written = time.monotonic()
        try:
            async for results in backend.stream(todo, budget):
                pending += results
                if time.monotonic() - written >= POLL_SECONDS:
                    batch, pending = pending, []
                    await asyncio.to_thread(write, batch)
                    written = time.monotonic()
        finally:
            if pending:
                write(pending)

    fatal = None
    try:
        asyncio.run(drive())
    except LLMBackendError as exc:
        fatal = str(exc)
    finally:
        backend.close()
    return ChunkOutcome(tokens=budget.tokens, stopped=budget.stopped, fatal=fatal)


def send_in_chunks(
    con: duckdb.DuckDBPyConnection, backend: Backend, missing: list[Request], *, chunking: Chunking, spool: Spool,
    run_id: str, budget: Budget, on_stored: Callable[[pa.Table], None],
) -> int:
    """Answer ``missing`` in chunks through ``chunking``, storing answers while they arrive; returns
    the number of chunks.

    The budget is shared out before the chunks start: at most ``max_calls`` prompts are sent, and
    each chunk may spend ``max_tokens`` in proportion to its prompts (rounded up). The configured
    ``concurrency`` is shared by the chunks that run at once, so the server sees the same load as
    from one process.
    """
    if budget.max_calls is not None and len(missing) > budget.max_calls:
        missing = missing[: budget.max_calls]
        budget.stopped = f"max_calls={budget.max_calls} reached"
    if not missing:
        return 0
    size = max(1, min(chunking.rows, math.ceil(len(missing) / chunking.slots)))
    chunks = [missing[start:start + size] for start in range(0, len(missing), size)]
    config = backend.config
    if isinstance(config, OpenAIBackendConfig):
        running = min(chunking.slots, len(chunks))
        config = config.model_copy(update={"concurrency": max(1, config.concurrency // running)})
    spool.directory.mkdir(parents=True, exist_ok=True)
    writer = con.cursor()
    stop = threading.Event()
    failure: list[BaseException] = []

    def store() -> None:
        answers = spool.store_new(writer)
        if answers is not None:
            on_stored(answers)

    def poll() -> None:
        try:
            while not stop.wait(POLL_SECONDS):
                store()
        except BaseException as exc:  # surfaced after the chunks finish
            failure.append(exc)

    poller = threading.Thread(target=poll, name="thresher-llm-spool", daemon=True)
    poller.start()
    arguments = [(config, chunk, str(spool.directory), f"{run_id}-{index:05d}", run_id,
                  None if budget.max_tokens is None else -(-budget.max_tokens * len(chunk) // len(missing)))
                 for index, chunk in enumerate(chunks)]
    try:
        outcomes: list[ChunkOutcome] = chunking.map_chunks(answer_chunk, arguments)
    finally:
        stop.set()
        poller.join()
        store()  # whatever arrived last, also when a chunk failed
    if failure:
        raise failure[0]
    budget.calls = len(missing)
    budget.tokens = sum(o.tokens for o in outcomes)
    if any(o.stopped for o in outcomes):
        budget.stopped = budget.stopped or f"max_tokens={budget.max_tokens} reached ({budget.tokens} used)"
    fatal = next((o.fatal for o in outcomes if o.fatal), None)
    if fatal is not None:
        raise LLMBackendError(fatal)
    return len(chunks)
