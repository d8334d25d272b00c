"""The labelled items a stage works on: given labels, or the label model's denoised ones."""

from __future__ import annotations

from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa


def label_input(con: duckdb.DuckDBPyConnection, labels_from: Literal["denoised", "given"]) -> str | None:
    """The label run whose labels a stage reads: the latest one for denoised labels, None for given ones."""
    from thresher.storage.repo import latest_run

    return latest_run(con, "label") if labels_from == "denoised" else None


def labelled_items(
    con: duckdb.DuckDBPyConnection, labels_from: Literal["denoised", "given"], label_run: str | None,
    *, include_uncovered: bool = False,
) -> pa.Table:
    """item_id, text, label, confidence and gold of every labelled item, ordered by item_id.

    Denoised labels come from ``label_run``; items no LF voted on are left out unless
    ``include_uncovered`` (their label is then the class prior's argmax).
    """
    if labels_from == "given":
        query = ("SELECT i.item_id, i.text, i.label, 1.0::DOUBLE AS confidence, i.gold FROM items i "
                 "WHERE i.label IS NOT NULL ORDER BY i.item_id")
        return con.sql(query).to_arrow_table()
    if label_run is None:
        raise ValueError("labels_from='denoised' needs a label run.")
    covered = "" if include_uncovered else "AND l.covered"
    query = (f"SELECT i.item_id, i.text, l.label, l.confidence, i.gold FROM items i JOIN labels l "
             f"ON l.item_id = i.item_id AND l.run_id = $run {covered} ORDER BY i.item_id")
    return con.sql(query, params={"run": label_run}).to_arrow_table()


def labelled_arrays(
    con: duckdb.DuckDBPyConnection, labels_from: Literal["denoised", "given"], label_run: str | None,
    *, include_uncovered: bool, purpose: str,
) -> tuple[pa.Table, list[str], np.ndarray]:
    """:func:`labelled_items` plus their ids and labels; a clear error when there is nothing to
    ``purpose`` (e.g. "check", "weigh") or fewer than two classes among the labels."""
    items = labelled_items(con, labels_from, label_run, include_uncovered=include_uncovered)
    if items.num_rows == 0:
        raise ValueError(f"No labelled items to {purpose} (labels_from={labels_from!r}).")
    labels = items.column("label").to_numpy().astype(np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"Label {purpose} needs at least two classes among the labels; "
                         f"all {len(labels)} have class {labels[0]}.")
    return items, items.column("item_id").to_pylist(), labels
