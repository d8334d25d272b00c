"""Evaluate every SQL-capable LF in one pass over the items inside DuckDB."""

from __future__ import annotations

from contextlib import ExitStack

import duckdb
import pyarrow as pa

from thresher.labeling.matrix import VOTES_SCHEMA

from thresher.labeling.lf.base import ABSTAIN, LabelingFunction
from thresher.labeling.apply.gate import gate_lfs
from thresher.labeling.apply.literal_scan import LiteralScanner
from thresher.labeling.lf.keyword import LOWER_TEXT_SQL
from thresher.labeling.lf.sql import LF_VIEW_COLUMNS



def lf_view(con: duckdb.DuckDBPyConnection, items: str = "items", where: str | None = None,
            lowered: bool = False) -> str:
    """A subquery over ``items`` with only the columns LFs may read (never ``gold``).

    With ``lowered`` it adds ``_lt``, the lower-cased text the literal gates test.
    """
    present = {r[0] for r in con.execute(f"SELECT * FROM {items} LIMIT 0").description}
    columns = [c for c in LF_VIEW_COLUMNS if c in present] + ([f"{LOWER_TEXT_SQL} AS _lt"] if lowered else [])
    return f"(SELECT {', '.join(columns)} FROM {items}{'' if where is None else f' WHERE {where}'})"


def validate_sql_lfs(con: duckdb.DuckDBPyConnection, lfs: list[LabelingFunction], *, items: str = "items") -> None:
    """Compile every LF's SQL against the items before any work: errors name the LF."""
    view = lf_view(con, items)
    for lf in lfs:
        expression = lf.sql("text")
        if expression is None:
            continue
        try:
            con.execute(f"SELECT {expression} FROM {view} LIMIT 0").fetchall()
        except duckdb.Error as exc:
            raise ValueError(f"LF {lf.name!r} ({lf.kind}) is not valid SQL here: {exc}") from None


def apply_sql_lfs(
    con: duckdb.DuckDBPyConnection, lfs: list[LabelingFunction], *, items: str = "items", where: str | None = None
) -> pa.Table:
    """Return the sparse votes (item_id, lf, vote; abstains left out) of ``lfs`` on ``items``.

    All LFs are compiled into one SELECT and unpivoted, so DuckDB reads the text once, and literal
    gates (:mod:`thresher.labeling.apply.gate`), found by one scan for up to 64 LFs, skip each LF's regex
    on rows it cannot match.
    ``where`` restricts the items (e.g. only those not yet voted on).
    """
    for lf in lfs:
        if lf.sql("text") is None:
            raise ValueError(f"LF {lf.name!r} has no SQL form; apply it with apply_python_lfs.")
    if not lfs:
        return VOTES_SCHEMA.empty_table()
    gates = gate_lfs(lfs)
    expressions = [f'({expression})::INTEGER AS "{lf.name}"' for lf, expression in zip(lfs, gates.expressions)]
    names = ", ".join(f'"{lf.name}"' for lf in lfs)
    with ExitStack() as stack:
        functions = [stack.enter_context(LiteralScanner(batch).registered(con)) for batch in gates.mask_batches()]
        view = lf_view(con, items, where, lowered=bool(functions))
        if functions:
            masks = ", ".join(f"{function}(_lt) AS _m{i}" for i, function in enumerate(functions))
            view = f"(SELECT *, {masks} FROM {view})"
        query = (
            f"SELECT item_id, lf, vote FROM (SELECT item_id, {', '.join(expressions)} FROM {view}) "
            f"UNPIVOT (vote FOR lf IN ({names})) WHERE vote <> {ABSTAIN} ORDER BY item_id, lf"
        )
        return con.sql(query).to_arrow_table().cast(VOTES_SCHEMA)
