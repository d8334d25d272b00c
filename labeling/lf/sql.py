"""SQL LFs: vote a label when a boolean SQL expression over the item's columns is true."""

from __future__ import annotations

import json

from thresher.labeling.lf.base import ABSTAIN, LabelingFunction, Row
from thresher.labeling.lf.regex import _engine

# What SQL LFs may read: never the gold label.
LF_VIEW_COLUMNS = ("item_id", "dataset", "split", "text", "label", "extra")


class SqlLF(LabelingFunction):
    """Vote ``label`` where ``where`` (a DuckDB boolean expression) holds.

    The expression sees ``item_id, dataset, split, text, label`` (the given label) and ``extra``
    (JSON of the other source columns, e.g. ``extra->>'AUTHOR'``); NULL counts as false.

    Examples
    --------
    >>> lf = SqlLF("short", where="length(text) < 12", label=0)
    >>> lf(Row(text="so good")), lf(Row(text="a much longer comment"))
    (0, -1)
    """

    kind = "sql"

    def __init__(self, name: str, *, where: str, label: int) -> None:
        super().__init__(name)
        if not where.strip():
            raise ValueError(f"The 'where' of SqlLF {name!r} must be a SQL expression. Got {where!r}.")
        self.where = where
        self.label = int(label)

    def __call__(self, x: Row) -> int:
        fields = vars(x)
        extra = {k: v for k, v in fields.items() if k not in LF_VIEW_COLUMNS}
        values = [fields.get(c) for c in LF_VIEW_COLUMNS[:-1]] + [json.dumps(extra, default=str)]
        row = ", ".join(f"${i + 1}::{t} AS {c}" for i, (c, t) in enumerate(
            zip(LF_VIEW_COLUMNS, ("VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "INTEGER", "JSON"))))
        query = f"SELECT {self.sql()} FROM (SELECT {row})"
        return int(_engine().execute(query, values).fetchall()[0][0])

    def definition(self) -> str:
        return json.dumps({"where": self.where, "label": self.label}, sort_keys=True)

    def sql(self, text_column: str = "text") -> str:
        return f"CASE WHEN coalesce(({self.where}), false) THEN {self.label} ELSE {ABSTAIN} END"
