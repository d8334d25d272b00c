"""Arrow column helpers shared by the writers (no DuckDB: the torch stages import them)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def constant_column(value: str, n: int) -> pa.DictionaryArray:
    """``value`` ``n`` times, stored once (dictionary-encoded): a run id beside millions of rows."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int8)), pa.array([value], pa.string()))
