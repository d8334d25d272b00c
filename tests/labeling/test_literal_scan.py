"""The one-pass literal scanner: same answers as ``contains`` per literal, any number of LFs."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thresher.labeling.apply import apply_sql_lfs
from thresher.labeling.apply.gate import gate_lfs
from thresher.labeling.apply.literal_scan import MAX_GROUPS, LiteralScanner
from thresher.labeling.lf import KeywordLF, RegexLF, Row
from thresher.labeling.matrix import vote_matrix

PIECES = st.sampled_from(["a", "b", "ab", "ba", "aab", "\u00e9", "\u017f", "k", " ", "\u212a", "xyz"])
LITERALS = st.lists(PIECES, min_size=1, max_size=3).map("".join)


@settings(max_examples=80, deadline=None)
@given(groups=st.lists(st.lists(LITERALS, min_size=1, max_size=4), min_size=1, max_size=6),
       texts=st.lists(st.one_of(st.none(), st.lists(PIECES, max_size=10).map("".join)), max_size=12))
def test_masks_say_which_groups_occur_as_substrings(groups, texts):
    """Overlapping, nested and multi-byte literals: bit g is set iff some literal of group g occurs."""
    masks = LiteralScanner(groups).masks(pa.array(texts, pa.string())).tolist()
    expected = [sum(1 << g for g, group in enumerate(groups) if t is not None and any(s in t for s in group))
                for t in texts]
    assert masks == expected


def test_masks_equal_duckdb_contains_through_sql_and_sliced_arrays():
    texts = ["check it out", "my video", None, "", "MY VIDEO".lower(), "subscribe and check"] * 500
    groups = [["check"], ["my video", "vid"], ["subscribe"]]
    con = duckdb.connect()
    con.register("t", pa.table({"text": texts}))
    with LiteralScanner(groups).registered(con) as function:
        rows = con.sql(f"SELECT {function}(text), contains(text, 'check'), contains(text, 'vid'), "
                       f"contains(text, 'subscribe') FROM t").fetchall()
    for mask, *hits in rows:
        assert (mask or 0) == sum(1 << g for g, hit in enumerate(hits) if hit)
    sliced = pa.array(texts, pa.string()).slice(3, 4)  # an Arrow slice has an offset into its buffers
    assert LiteralScanner(groups).masks(sliced).tolist() == [0, 2, 5, 1]


def test_more_lfs_than_one_mask_holds(con):
    """70 gated LFs need two mask columns; the votes equal the per-item path's."""
    words = [f"w{i:02d}" for i in range(70)]
    lfs = [KeywordLF(f"kw_{w}", terms=[w, f"{w}x"], label=i % 2) for i, w in enumerate(words)]
    lfs.append(RegexLF("re_w1", pattern=r"W1\d\b", label=1, case_sensitive=False))
    assert len(gate_lfs(lfs).mask_batches()) == 2
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words + ["W65", "w6", "w10x", "zz"], size=4)) for _ in range(150)]
    con.execute("CREATE TABLE t (item_id VARCHAR, text VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(f"{i:04d}", text) for i, text in enumerate(texts)])
    L = vote_matrix(apply_sql_lfs(con, lfs, items="t"), [f"{i:04d}" for i in range(len(texts))], [lf.name for lf in lfs])
    expected = np.array([[lf(Row(text=text)) for lf in lfs] for text in texts])
    assert (L != -1).sum() > 400
    np.testing.assert_array_equal(L, expected)
    assert not [f for f in con.sql("SELECT function_name FROM duckdb_functions()").fetchall()
                if f[0].startswith("_thresher_literals")]  # the scanners were unregistered


def test_bad_groups_are_rejected():
    with pytest.raises(ValueError, match=f"1 to {MAX_GROUPS} groups"):
        LiteralScanner([])
    with pytest.raises(ValueError, match=f"1 to {MAX_GROUPS} groups"):
        LiteralScanner([["a"]] * (MAX_GROUPS + 1))
    with pytest.raises(ValueError, match="non-empty"):
        LiteralScanner([["a", ""]])
