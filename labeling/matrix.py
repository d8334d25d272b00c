"""Votes: the sparse (item_id, lf, vote) rows every applier returns, and the N x M label matrix L built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from thresher.labeling.lf.base import ABSTAIN

# What every applier returns and the vote cache stores: one row per (item, LF) that did not abstain.
VOTES_SCHEMA = pa.schema([("item_id", pa.string()), ("lf", pa.string()), ("vote", pa.int32())])


def vote_matrix(votes: pa.Table, item_ids: list[str], lf_names: list[str]) -> np.ndarray:
    """Dense L (-1 = abstain) with rows in ``item_ids`` order and columns in ``lf_names`` order.

    Votes for items or LFs not listed are an error, never silently dropped.

    Examples
    --------
    >>> votes = pa.table({"item_id": ["b", "a"], "lf": ["x", "y"], "vote": [1, 0]})
    >>> vote_matrix(votes, ["a", "b"], ["x", "y"]).tolist()
    [[-1, 0], [1, -1]]
    """
    rows = pd.Index(item_ids).get_indexer(votes.column("item_id").to_numpy(zero_copy_only=False))
    cols = pd.Index(lf_names).get_indexer(votes.column("lf").to_numpy(zero_copy_only=False))
    if (rows < 0).any() or (cols < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} votes name unknown items and {int((cols < 0).sum())} unknown LFs.")
    L = np.full((len(item_ids), len(lf_names)), ABSTAIN, dtype=np.int64)
    L[rows, cols] = votes.column("vote").to_numpy(zero_copy_only=False)
    return L
