"""The target set a selection aims at: items of a split, items a SQL query returns, or a file.

Target items that are in the database are left out of the pool. A file target is read like a
source (same formats and column mapping) but never ingested; a bad row in it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import numpy as np
from pydantic import model_validator

from thresher.storage.ingest import SourceConfig, read_source
from thresher.core.config import StageConfig


class TargetConfig(StageConfig):
    """Exactly one of ``split``, ``sql`` (a query over the database that returns ``item_id``) or
    ``file`` (a source description: path, format, columns). ``labels`` says which label of a
    database target the labelled CoLoR-Filter conditions on; a file's labels are its label
    column, else its gold column."""

    split: str | None = None  # the target is this split's items
    sql: str | None = None  # or the item_ids this query returns
    file: SourceConfig | None = None  # or the rows of this file (a source description: path, format, columns)
    # which label of a split or query target: given | gold | denoised
    labels: Literal["given", "gold", "denoised"] = "given"

    @model_validator(mode="before")
    @classmethod
    def _file_dataset(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("file"), dict):
            data = {**data, "file": {"dataset": "target", **data["file"]}}
        return data

    @model_validator(mode="after")
    def _one(self) -> "TargetConfig":
        given = [name for name in ("split", "sql", "file") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"Give the target as exactly one of split, sql or file. Got {given or 'none'}.")
        return self

    def describe(self) -> str:
        if self.split is not None:
            return f"split {self.split!r}"
        if self.sql is not None:
            return f"sql {self.sql!r}"
        return f"file {self.file.path!r}"  # type: ignore[union-attr]


@dataclass
class TargetSet:
    """The target's texts and labels (-1 where unknown); ``item_ids`` is None for a file."""

    item_ids: list[str] | None
    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def _from_items(con: duckdb.DuckDBPyConnection, ids_sql: str, params: dict, labels: str, label_run: str | None) -> TargetSet:
    if labels == "denoised":
        if label_run is None:
            raise ValueError("target.labels is 'denoised' but there is no label run (labels_from is 'given').")
        label_sql = "(SELECT l.label FROM labels l WHERE l.item_id = i.item_id AND l.run_id = $label_run AND l.decided)"
        params = {**params, "label_run": label_run}
    else:
        label_sql = f"i.{'label' if labels == 'given' else 'gold'}"
    rows = con.sql(f"SELECT i.item_id, i.text, {label_sql} AS label FROM items i "
                   f"WHERE i.item_id IN ({ids_sql}) ORDER BY i.item_id", params=params).fetchall()
    return TargetSet([r[0] for r in rows], [r[1] for r in rows],
                     np.array([-1 if r[2] is None else r[2] for r in rows], dtype=np.int64))


def load_target(con: duckdb.DuckDBPyConnection, config: TargetConfig, *, classes: list[str],
                label_run: str | None) -> TargetSet:
    """Read the target set; an empty one is an error that says where it looked."""
    if config.split is not None:
        target = _from_items(con, "SELECT item_id FROM items WHERE split = $split", {"split": config.split},
                             config.labels, label_run)
    elif config.sql is not None:
        try:  # a subquery: the text can only be one SELECT, never a write
            con.execute(f"SELECT item_id FROM ({config.sql}) LIMIT 0")
        except duckdb.Error as exc:
            raise ValueError(f"target.sql must be one SELECT over the database that returns an 'item_id' column: {exc}") from None
        target = _from_items(con, f"SELECT item_id FROM ({config.sql})", {}, config.labels, label_run)
    else:
        rows = read_source(config.file, classes)  # type: ignore[arg-type]
        column = "label" if config.file.columns.label is not None else "gold"  # type: ignore[union-attr]
        target = TargetSet(None, [r["text"] for r in rows],
                           np.array([-1 if r[column] is None else r[column] for r in rows], dtype=np.int64))
    if len(target) == 0:
        raise ValueError(f"The target set ({config.describe()}) is empty: a selection needs target items to aim at.")
    return target
