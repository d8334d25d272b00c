"""Numeric source columns as features, for tabular items (kept in ``items.extra`` at ingest)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from thresher.storage.connection import registered


def numeric_features(con: duckdb.DuckDBPyConnection, item_ids: list[str] | pa.Array, columns: list[str]) -> np.ndarray:
    """N x len(columns) standardised values of ``columns`` for ``item_ids``, in that order.

    Every value must be present and numeric: a missing or non-numeric cell is an error naming the
    column and an example item, never a silent zero.
    """
    if not columns:
        raise ValueError("The numeric encoder needs numeric_columns: the source columns to use as features.")
    ids = item_ids if isinstance(item_ids, pa.Array) else pa.array(item_ids, pa.string())
    wanted = pa.table({"item_id": ids, "position": pa.array(np.arange(len(item_ids)), pa.int64())})
    with registered(con, _wanted_numeric=wanted):
        # One JSON parse per item for every column (a call per column made DuckDB hold a parse per cell).
        rows = con.execute(
            "SELECT w.position, w.item_id, list_transform(json_extract_string(i.extra, ?::VARCHAR[]), "
            "lambda v: TRY_CAST(v AS DOUBLE)) FROM _wanted_numeric w JOIN items i USING (item_id) ORDER BY w.position",
            [[f'$."{c}"' for c in columns]]).fetchall()
    if len(rows) != len(item_ids):
        raise ValueError(f"{len(item_ids) - len(rows)} of the {len(item_ids)} items are not in the items table.")
    X = np.array([[np.nan if v is None else v for v in r[2]] for r in rows], dtype=float).reshape(len(rows), len(columns))
    bad = np.isnan(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"Column {columns[col]!r} is missing or not numeric for {int(bad[:, col].sum())} items "
            f"(e.g. item {rows[row][1]!r}); numeric_columns must name numeric source columns.")
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(X)
