"""LF application in chunks on other processes or machines (e.g. a Dask cluster).

The driver writes each chunk of items to a Parquet part; a worker opens it in its own in-memory
DuckDB and runs the same engines (one SQL pass for keyword/regex/SQL/lookup LFs, batches for
Python LFs) and returns the votes as an Arrow table. Only the driver writes to the project
database, which DuckDB requires. Votes are identical to a single-process run: the engines are the
same, and the chunks only split the rows.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cloudpickle
import duckdb
import pyarrow as pa

from thresher.labeling.matrix import VOTES_SCHEMA
from thresher.labeling.apply.duckdb import apply_sql_lfs
from thresher.labeling.apply.python import LF_COLUMNS, FaultReport, apply_python_lfs, check_fault_rate, pickle_lfs
from thresher.core.chunking import MapChunks
from thresher.labeling.lf.base import LabelingFunction

def vote_chunk(part: str, payload: bytes) -> tuple[pa.Table, FaultReport]:
    """On a worker: the votes of the pickled LFs on the items in one Parquet part."""
    lfs: list[LabelingFunction] = cloudpickle.loads(payload)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW chunk AS SELECT * FROM read_parquet('{part}')")
        sql_votes = apply_sql_lfs(con, [lf for lf in lfs if lf.sql() is not None], items="chunk")
        python_votes, faults = apply_python_lfs(con, [lf for lf in lfs if lf.sql() is None], items="chunk",
                                                max_fault_rate=1.0, n_jobs=1)
    finally:
        con.close()
    return pa.concat_tables([sql_votes, python_votes]), faults


def apply_in_chunks(
    con: duckdb.DuckDBPyConnection, lfs: list[LabelingFunction], *, where: str, map_chunks: MapChunks,
    chunk_rows: int, max_fault_rate: float, workdir: Path | None = None,
) -> tuple[pa.Table, FaultReport]:
    """The votes of ``lfs`` on the items matching ``where``, computed chunk by chunk by ``map_chunks``.

    The parts are written under ``workdir`` (default: the system's temporary directory), which the
    workers must be able to read: on a multi-machine cluster, a shared filesystem.
    """
    total = con.execute(f"SELECT count(*) FROM items WHERE {where}").fetchall()[0][0]
    if not lfs or total == 0:
        return VOTES_SCHEMA.empty_table(), FaultReport()
    directory = Path(tempfile.mkdtemp(prefix="thresher-parts-", dir=workdir))
    try:
        parts = []
        for index, offset in enumerate(range(0, total, chunk_rows)):
            part = directory / f"part-{index:05d}.parquet"
            con.execute(f"COPY (SELECT {LF_COLUMNS} FROM items WHERE {where} ORDER BY item_seq "
                        f"LIMIT {chunk_rows} OFFSET {offset}) TO '{part}' (FORMAT parquet)")
            parts.append(str(part))
        payload = pickle_lfs(lfs)
        results = map_chunks(vote_chunk, [(part, payload) for part in parts])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    faults = FaultReport()
    for _, chunk_faults in results:
        faults.merge(chunk_faults)
    check_fault_rate(faults, total, max_fault_rate)
    votes = pa.concat_tables([votes for votes, _ in results]).cast(VOTES_SCHEMA)
    return votes.sort_by([("item_id", "ascending"), ("lf", "ascending")]), faults
