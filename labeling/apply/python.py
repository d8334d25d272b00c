"""Run Python LFs item by item over batches read from DuckDB."""

from __future__ import annotations

import json
import logging
from collections import Counter

import duckdb
import pyarrow as pa

from labeling.apply.duckdb import VOTES_SCHEMA
from labeling.lf.base import ABSTAIN, LabelingFunction, Row
from thresher.progress import track

logger = logging.getLogger(__name__)

# Gold labels are never shown to LFs: they are for evaluation only.
LF_COLUMNS = "item_id, dataset, split, text, label, extra"


class LFFaultError(RuntimeError):
    """A Python LF raised on an item (and fault tolerance was off)."""


def iter_rows(con: duckdb.DuckDBPyConnection, *, items: str = "items", batch_size: int = 4096):
    """Yield :class:`Row` objects for every item, extra source columns as attributes."""
    reader = con.sql(f"SELECT {LF_COLUMNS} FROM {items} ORDER BY item_id").to_arrow_reader(batch_size)
    for batch in reader:
        for record in batch.to_pylist():
            extra = json.loads(record.pop("extra") or "{}")
            fields = {k: v for k, v in extra.items() if k.isidentifier()}
            fields.update(record)
            yield Row(**fields)


def apply_python_lfs(
    con: duckdb.DuckDBPyConnection,
    lfs: list[LabelingFunction],
    *,
    items: str = "items",
    fault_tolerant: bool = False,
    progress: bool = False,
) -> tuple[pa.Table, Counter]:
    """Return the sparse votes of ``lfs`` on every item, and the count of faults per LF.

    An LF that raises stops the run with :class:`LFFaultError` naming the LF and item, unless
    ``fault_tolerant``: then the vote is an abstain and the fault is counted.
    """
    item_ids, names, votes = [], [], []
    faults: Counter = Counter()
    if not lfs:
        return VOTES_SCHEMA.empty_table(), faults
    total = con.execute(f"SELECT count(*) FROM {items}").fetchall()[0][0]
    for row in track(iter_rows(con, items=items), description="Python LFs", enabled=progress, total=total):
        for lf in lfs:
            try:
                vote = lf(row)
            except Exception as exc:
                if not fault_tolerant:
                    raise LFFaultError(f"LF {lf.name!r} raised on item {row.item_id!r}: {exc!r}") from exc
                faults[lf.name] += 1
                continue
            if vote != ABSTAIN:
                item_ids.append(row.item_id)
                names.append(lf.name)
                votes.append(vote)
    if faults:
        logger.warning("Python LF faults (abstained): %s", dict(faults))
    table = pa.table({"item_id": item_ids, "lf": names, "vote": pa.array(votes, pa.int32())}, schema=VOTES_SCHEMA)
    return table, faults
