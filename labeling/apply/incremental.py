"""Incremental LF application over the vote cache (``lf_votes`` + ``lf_progress``).

Each LF version remembers up to which ``item_seq`` it has been evaluated. A run evaluates only
what is missing: an edited LF (new version) on every item, unchanged LFs only on new items.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core.chunking import Chunking
from thresher.labeling.apply.chunked import apply_in_chunks
from thresher.labeling.matrix import VOTES_SCHEMA
from thresher.labeling.apply.duckdb import apply_sql_lfs
from thresher.labeling.apply.python import FaultReport, apply_python_lfs
from thresher.labeling.lf.base import LabelingFunction
from thresher.storage.connection import registered, transaction

logger = logging.getLogger(__name__)


def max_item_seq(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(item_seq), 0) FROM items").fetchall()[0][0])


def update_vote_cache(
    con: duckdb.DuckDBPyConnection, lfs: list[LabelingFunction], *, through_seq: int,
    max_fault_rate: float = 0.0, n_jobs: int | None = None, progress: bool = False,
    chunking: Chunking | None = None,
) -> tuple[dict[str, int], FaultReport]:
    """Evaluate each LF on the items it has not seen yet, up to ``through_seq``; cache the votes.

    Returns the number of items each LF was evaluated on in this call (0: all from the cache),
    and the Python LFs' faults. LFs with the same watermark share one pass (one SQL query, one
    Python sweep); each group is committed on its own, so finished work survives a later failure.
    """
    versions = [lf.version() for lf in lfs]
    done = dict(con.execute("SELECT version, through_seq FROM lf_progress").fetchall())
    groups: dict[int, list[int]] = defaultdict(list)
    for index, version in enumerate(versions):
        start = int(done.get(version, 0))
        if start < through_seq:
            groups[start].append(index)
    evaluated = {lf.name: 0 for lf in lfs}
    faults = FaultReport()
    for start, indices in sorted(groups.items()):
        where = f"item_seq > {start} AND item_seq <= {through_seq}"
        n_items = con.execute(f"SELECT count(*) FROM items WHERE {where}").fetchall()[0][0]
        group = [lfs[i] for i in indices]
        if chunking is not None:  # on other processes or machines (a Dask cluster)
            votes, group_faults = apply_in_chunks(con, group, where=where, map_chunks=chunking.map_chunks,
                                                  chunk_rows=chunking.rows, max_fault_rate=max_fault_rate,
                                                  workdir=chunking.directory)
        else:
            sql_lfs = [lf for lf in group if lf.sql() is not None]
            python_lfs = [lf for lf in group if lf.sql() is None]
            python_votes, group_faults = apply_python_lfs(con, python_lfs, where=where, max_fault_rate=max_fault_rate,
                                                          n_jobs=n_jobs, progress=progress)
            votes = pa.concat_tables([apply_sql_lfs(con, sql_lfs, where=where), python_votes])
        faults.merge(group_faults)
        votes = votes.cast(VOTES_SCHEMA)
        position = pc.index_in(votes.column("lf"), value_set=pa.array([lf.name for lf in group], pa.string()))
        cache = pa.table({
            "version": pa.array([versions[i] for i in indices], pa.string()).take(position),
            "item_id": votes.column("item_id"), "vote": votes.column("vote"),
        })
        progress_rows = pa.table({"version": [versions[i] for i in indices], "lf": [lf.name for lf in group],
                                  "through_seq": pa.array([through_seq] * len(group), pa.int64())})
        with transaction(con):
            with registered(con, _cache_votes=cache, _cache_progress=progress_rows):
                con.execute("INSERT INTO lf_votes SELECT version, item_id, vote FROM _cache_votes")
                con.execute("INSERT OR REPLACE INTO lf_progress SELECT version, lf, through_seq FROM _cache_progress")
        for lf in group:
            evaluated[lf.name] = n_items
        logger.info("Evaluated %d LFs on %d items (item_seq %d..%d)", len(group), n_items, start + 1, through_seq)
    return evaluated, faults


def cached_votes(con: duckdb.DuckDBPyConnection, lfs: list[LabelingFunction], *, through_seq: int) -> pa.Table:
    """The sparse votes (item_id, lf, vote) of ``lfs`` on items up to ``through_seq``, from the cache."""
    names = pa.table({"version": [lf.version() for lf in lfs], "lf": [lf.name for lf in lfs]})
    with registered(con, _run_lfs=names):
        return con.sql(
            "SELECT v.item_id, n.lf, v.vote FROM lf_votes v JOIN _run_lfs n USING (version) "
            "JOIN items i ON i.item_id = v.item_id AND i.item_seq <= $through ORDER BY v.item_id, n.lf",
            params={"through": through_seq},
        ).to_arrow_table().cast(VOTES_SCHEMA)
