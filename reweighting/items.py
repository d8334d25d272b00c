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


def labelled_query(
    labels_from: Literal["denoised", "given"], label_run: str | None, *, include_uncovered: bool = False,
    columns: str = "i.item_id, i.text, label, confidence, i.gold",
) -> tuple[str, dict[str, str]]:
    """The SQL (and its parameters) of the labelled items, ordered by item_id; ``columns`` picks what it returns.

    Denoised labels come from ``label_run``; items it left undecided (no LF voted on them or, under
    ``tie_break: abstain``, their classes tie) are left out unless ``include_uncovered`` (an uncovered
    item's label is then the class prior's most probable class).
    """
    if labels_from == "given":
        return (f"SELECT {columns} FROM (SELECT *, 1.0::DOUBLE AS confidence FROM items) i "
                "WHERE i.label IS NOT NULL ORDER BY i.item_id"), {}
    if label_run is None:
        raise ValueError("labels_from='denoised' needs a label run.")
    decided = "" if include_uncovered else "AND l.decided"
    return (f"SELECT {columns} FROM items i JOIN labels l ON l.item_id = i.item_id AND l.run_id = $run {decided} "
            "ORDER BY i.item_id"), {"run": label_run}


def labelled_items(
    con: duckdb.DuckDBPyConnection, labels_from: Literal["denoised", "given"], label_run: str | None,
    *, include_uncovered: bool = False, text: bool = True,
) -> pa.Table:
    """item_id, text (unless not ``text``), label, confidence and gold of every labelled item, ordered by item_id."""
    columns = "i.item_id, " + ("i.text, " if text else "") + ("i.label" if labels_from == "given" else "l.label") \
        + ", confidence, i.gold"
    query, params = labelled_query(labels_from, label_run, include_uncovered=include_uncovered, columns=columns)
    return con.sql(query, params=params).to_arrow_table()


def labelled_arrays(
    con: duckdb.DuckDBPyConnection, labels_from: Literal["denoised", "given"], label_run: str | None,
    *, include_uncovered: bool, purpose: str, text: bool = True,
) -> tuple[pa.Table, pa.Array, np.ndarray]:
    """:func:`labelled_items` plus their ids (an Arrow array) and labels; a clear error when there is
    nothing to ``purpose`` (e.g. "check", "weigh") or fewer than two classes among the labels."""
    items = labelled_items(con, labels_from, label_run, include_uncovered=include_uncovered, text=text)
    if items.num_rows == 0:
        raise ValueError(f"No labelled items to {purpose} (labels_from={labels_from!r}).")
    labels = items.column("label").to_numpy().astype(np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"Label {purpose} needs at least two classes among the labels; "
                         f"all {len(labels)} have class {labels[0]}.")
    return items, items.column("item_id").combine_chunks(), labels
