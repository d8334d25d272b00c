"""Run Python LFs item by item, in batches, in this process or over spawned worker processes."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import duckdb
import numpy as np
import pyarrow as pa

from thresher.labeling.matrix import VOTES_SCHEMA
from thresher.labeling.lf.base import ABSTAIN, LabelingFunction, Row
from thresher.core.progress import track
from thresher.core.plugins import USER_MODULE_PREFIX

logger = logging.getLogger(__name__)

# Gold labels are never shown to LFs: they are for evaluation only.
LF_COLUMNS = "item_id, dataset, split, text, label, extra"
EXAMPLES_PER_LF = 3
# Spawning workers (each imports snorkel, torch, ...) costs a few seconds: with n_jobs=None they
# are used only when the first batch, timed in this process, projects more serial work than this.
PARALLEL_MIN_SECONDS = 20.0


class LFFaultError(RuntimeError):
    """Python LFs raised on more items than the configured fault rate allows."""


@dataclass
class FaultReport:
    """How often each LF raised, with the first few (item_id, error) examples."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, lf: str, item_id: str, error: BaseException | str) -> None:
        self.counts[lf] += 1
        examples = self.examples.setdefault(lf, [])
        if len(examples) < EXAMPLES_PER_LF:
            examples.append((item_id, error if isinstance(error, str) else f"{type(error).__name__}: {error}"))

    def merge(self, other: "FaultReport") -> None:
        for lf, count in other.counts.items():
            self.counts[lf] += count
            examples = self.examples.setdefault(lf, [])
            examples.extend(other.examples.get(lf, [])[: EXAMPLES_PER_LF - len(examples)])

    def as_dict(self) -> dict[str, Any]:
        return {lf: {"count": n, "examples": [list(e) for e in self.examples.get(lf, [])]} for lf, n in self.counts.items()}

    def __bool__(self) -> bool:
        return bool(self.counts)


def check_fault_rate(faults: FaultReport, total: int, max_fault_rate: float) -> None:
    """Log the faults; raise :class:`LFFaultError` if an LF raised on more than the allowed fraction."""
    if not faults:
        return
    logger.warning("Python LF faults (abstained): %s", faults.as_dict())
    too_many = {lf: n for lf, n in faults.counts.items() if total and n / total > max_fault_rate}
    if too_many:
        details = "; ".join(
            f"{lf!r} raised on {n} of {total} items ({n / total:.1%}), e.g. "
            + ", ".join(f"{item}: {error}" for item, error in faults.examples[lf])
            for lf, n in too_many.items()
        )
        raise LFFaultError(f"LFs failed on more than max_fault_rate={max_fault_rate:.1%} of the items: {details}")


def _rows(batch: pa.RecordBatch) -> Iterator[Row]:
    for record in batch.to_pylist():
        extra = json.loads(record.pop("extra") or "{}")
        fields = {k: v for k, v in extra.items() if k.isidentifier()}
        fields.update(record)
        yield Row(**fields)


def iter_rows(con: duckdb.DuckDBPyConnection, *, items: str = "items", where: str | None = None,
              batch_size: int = 4096) -> Iterator[Row]:
    """Yield :class:`Row` objects for the items, extra source columns as attributes."""
    for batch in _batches(con, items=items, where=where, batch_size=batch_size):
        yield from _rows(batch)


def _batches(con, *, items: str, where: str | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    condition = "" if where is None else f" WHERE {where}"
    yield from con.sql(f"SELECT {LF_COLUMNS} FROM {items}{condition} ORDER BY item_id").to_arrow_reader(batch_size)


def _apply_batch(lfs: list[LabelingFunction], batch: pa.RecordBatch) -> tuple[list[str], list[int], list[int], FaultReport]:
    item_ids, columns, votes = [], [], []
    faults = FaultReport()
    for row in _rows(batch):
        for j, lf in enumerate(lfs):
            try:
                vote = lf(row)
            except Exception as exc:  # counted and reported; the fault policy decides
                faults.add(lf.name, row.item_id, exc)
                continue
            if vote != ABSTAIN:
                item_ids.append(row.item_id)
                columns.append(j)
                votes.append(vote)
    return item_ids, columns, votes, faults


_WORKER_LFS: list[LabelingFunction] = []


def _init_worker(payload: bytes) -> None:
    global _WORKER_LFS
    _WORKER_LFS = cloudpickle.loads(payload)


def _worker_batch(batch: pa.RecordBatch):
    return _apply_batch(_WORKER_LFS, batch)


def pickle_lfs(lfs: list[LabelingFunction]) -> bytes:
    """Pickle LFs for spawned workers; modules loaded from LF files travel by value."""
    for name, module in list(sys.modules.items()):
        if name.startswith(USER_MODULE_PREFIX):
            cloudpickle.register_pickle_by_value(module)
    return cloudpickle.dumps(lfs)


def resolve_jobs(n_jobs: int | None, projected_seconds: float) -> int:
    """``n_jobs`` as given, or (None) all cores when the projected serial time pays for workers."""
    if n_jobs is not None:
        if n_jobs < 1:
            raise ValueError(f"The 'n_jobs' parameter must be >= 1 or None. Got {n_jobs} instead.")
        return n_jobs
    return (os.cpu_count() or 1) if projected_seconds >= PARALLEL_MIN_SECONDS else 1


def apply_python_lfs(
    con: duckdb.DuckDBPyConnection,
    lfs: list[LabelingFunction],
    *,
    items: str = "items",
    where: str | None = None,
    max_fault_rate: float = 0.0,
    n_jobs: int | None = None,
    batch_size: int = 2000,
    progress: bool = False,
) -> tuple[pa.Table, FaultReport]:
    """Return the sparse votes of ``lfs`` on the items, and a report of the LFs' faults.

    An LF that raises on an item abstains there; the fault is counted with the first examples.
    If any LF faults on more than ``max_fault_rate`` of the items, :class:`LFFaultError` is
    raised naming the LFs and examples. ``n_jobs > 1`` spreads batches over spawned processes;
    ``None`` times the first batch here and uses all cores if the rest would take long.
    """
    faults = FaultReport()
    if not lfs:
        return VOTES_SCHEMA.empty_table(), faults
    condition = "" if where is None else f" WHERE {where}"
    total = con.execute(f"SELECT count(*) FROM {items}{condition}").fetchall()[0][0]
    batches = _batches(con, items=items, where=where, batch_size=batch_size)
    n_batches = -(-total // batch_size)
    item_ids: list[str] = []
    columns: list[int] = []
    votes: list[int] = []

    def collect(result) -> None:
        ids, cols, vals, batch_faults = result
        item_ids.extend(ids)
        columns.extend(cols)
        votes.extend(vals)
        faults.merge(batch_faults)

    first = next(iter(batches), None)
    jobs = 1
    if first is not None:
        started = time.perf_counter()
        collect(_apply_batch(lfs, first))
        per_row = (time.perf_counter() - started) / max(first.num_rows, 1)
        jobs = resolve_jobs(n_jobs, per_row * (total - first.num_rows))
    if jobs == 1:
        for batch in track(batches, description="Python LFs", enabled=progress and n_batches > 1,
                           total=max(n_batches - 1, 0)):  # no empty 0/0 bar
            collect(_apply_batch(lfs, batch))
    else:
        context = multiprocessing.get_context("spawn")  # fork is unsafe once DuckDB/Prefect threads run
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(pickle_lfs(lfs),)) as pool:
            results = pool.map(_worker_batch, batches)
            for result in track(results, description=f"Python LFs ({jobs} processes)", enabled=progress,
                                total=max(n_batches - 1, 0)):
                collect(result)

    check_fault_rate(faults, total, max_fault_rate)
    names = np.array([lf.name for lf in lfs], dtype=object)
    table = pa.table({"item_id": pa.array(item_ids, pa.string()),
                      "lf": pa.array(names[np.asarray(columns, dtype=np.int64)].tolist() if columns else [], pa.string()),
                      "vote": pa.array(votes, pa.int32())}, schema=VOTES_SCHEMA)
    return table.sort_by([("item_id", "ascending"), ("lf", "ascending")]), faults
