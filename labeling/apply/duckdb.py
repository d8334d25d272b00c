"""Evaluate every SQL-capable LF in one pass over ``items`` inside DuckDB."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from labeling.lf.base import ABSTAIN, LabelingFunction

VOTES_SCHEMA = pa.schema([("item_id", pa.string()), ("lf", pa.string()), ("vote", pa.int32())])


def apply_sql_lfs(
    con: duckdb.DuckDBPyConnection, lfs: list[LabelingFunction], *, items: str = "items"
) -> pa.Table:
    """Return the sparse votes (item_id, lf, vote; abstains left out) of ``lfs`` on ``items``.

    All LFs are compiled into one SELECT and unpivoted, so DuckDB reads the text once.
    """
    expressions = []
    for lf in lfs:
        expression = lf.sql("text")
        if expression is None:
            raise ValueError(f"LF {lf.name!r} has no SQL form; apply it with apply_python_lfs.")
        expressions.append(f'({expression})::INTEGER AS "{lf.name}"')
    if not expressions:
        return VOTES_SCHEMA.empty_table()
    names = ", ".join(f'"{lf.name}"' for lf in lfs)
    query = (
        f"SELECT item_id, lf, vote FROM (SELECT item_id, {', '.join(expressions)} FROM {items}) "
        f"UNPIVOT (vote FOR lf IN ({names})) WHERE vote <> {ABSTAIN} ORDER BY item_id, lf"
    )
    return con.sql(query).to_arrow_table().cast(VOTES_SCHEMA)
