"""Votes: the sparse (item_id, lf, vote) rows every applier returns, and the N x M label matrix L built from them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from thresher.labeling.lf.base import ABSTAIN

# What every applier returns and the vote cache stores: one row per (item, LF) that did not abstain.
VOTES_SCHEMA = pa.schema([("item_id", pa.string()), ("lf", pa.string()), ("vote", pa.int32())])


def vote_matrix(votes: pa.Table, item_ids: list[str] | pa.Array | pa.ChunkedArray, lf_names: list[str]) -> np.ndarray:
    """Dense L (-1 = abstain) with rows in ``item_ids`` order and columns in ``lf_names`` order.

    The smallest integer type that holds the votes (int8 below 127 classes: 10M items x 20 LFs in
    200 MB); rows are found by Arrow's hash lookup, so ``item_ids`` may stay an Arrow array. Votes for
    items or LFs not listed are an error, never silently dropped.

    Examples
    --------
    >>> votes = pa.table({"item_id": ["b", "a"], "lf": ["x", "y"], "vote": [1, 0]})
    >>> vote_matrix(votes, ["a", "b"], ["x", "y"]).tolist()
    [[-1, 0], [1, -1]]
    """
    import pyarrow.compute as pc

    ids = item_ids if isinstance(item_ids, (pa.Array, pa.ChunkedArray)) else pa.array(item_ids, pa.string())
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    rows = pc.fill_null(pc.index_in(votes.column("item_id"), value_set=ids), -1).to_numpy(zero_copy_only=False)
    cols = pc.fill_null(pc.index_in(votes.column("lf"), value_set=pa.array(lf_names, pa.string())),
                        -1).to_numpy(zero_copy_only=False)
    if (rows < 0).any() or (cols < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} votes name unknown items and {int((cols < 0).sum())} unknown LFs.")
    values = votes.column("vote").to_numpy(zero_copy_only=False)
    dtype = np.int8 if values.size == 0 or int(values.max()) < np.iinfo(np.int8).max else np.int32
    L = np.full((len(ids), len(lf_names)), ABSTAIN, dtype=dtype)
    L[rows, cols] = values
    return L
