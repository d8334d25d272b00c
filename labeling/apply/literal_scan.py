"""One pass over the text finds the literals of up to 64 LFs at once (an Aho-Corasick automaton).

The literal gates of :mod:`thresher.labeling.apply.gate` need, per row and LF, whether the lower-cased
text contains any of the LF's literals. One ``contains()`` per literal is one full scan of the
text per literal (about 40 scans for 20 LFs, 1.9 s on 1M rows). An Aho-Corasick automaton reads
each byte once and reports every literal that ends there, overlapping ones included, so a single
scan answers all of them; DuckDB calls it as a vectorised Python UDF, compiled with numba.

Matching is on UTF-8 bytes, exactly as ``contains`` compares, so the gates keep their meaning.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import duckdb
import numba
import numpy as np
import pyarrow as pa

MAX_GROUPS = 64  # one bit of the UBIGINT mask per group
_names = itertools.count()


@numba.njit(nogil=True, cache=True)
def _scan(data: np.ndarray, offsets: np.ndarray, byte_class: np.ndarray, delta: np.ndarray,
          output: np.ndarray, masks: np.ndarray) -> None:  # pragma: no cover - compiled
    # Two rows advance together (row i and row i + half): their lookups do not wait on each other.
    n = offsets.shape[0] - 1
    half = (n + 1) // 2
    for i in range(half):
        j = i + half
        a, a_end = offsets[i], offsets[i + 1]
        b, b_end = (offsets[j], offsets[j + 1]) if j < n else (0, 0)
        state_a = state_b = 0
        mask_a = mask_b = np.uint64(0)
        for k in range(min(a_end - a, b_end - b)):
            state_a = delta[state_a, byte_class[data[a + k]]]
            state_b = delta[state_b, byte_class[data[b + k]]]
            mask_a |= output[state_a]
            mask_b |= output[state_b]
        for k in range(a + min(a_end - a, b_end - b), a_end):
            state_a = delta[state_a, byte_class[data[k]]]
            mask_a |= output[state_a]
        for k in range(b + min(a_end - a, b_end - b), b_end):
            state_b = delta[state_b, byte_class[data[k]]]
            mask_b |= output[state_b]
        masks[i] = mask_a
        if j < n:
            masks[j] = mask_b


class LiteralScanner:
    """Which of ``groups`` (lists of lower-case literals) occur in each text, as bits of a uint64.

    Bit ``g`` of a text's mask is set when the text contains any literal of ``groups[g]``.

    Examples
    --------
    >>> scanner = LiteralScanner([["video", "vid"], ["deo clip"], ["my "]])
    >>> scanner.masks(pa.array(["my video", "a deo clip", None, "", "vi"])).tolist()
    [5, 2, 0, 0, 0]
    """

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        if not 0 < len(groups) <= MAX_GROUPS:
            raise ValueError(f"LiteralScanner takes 1 to {MAX_GROUPS} groups of literals. Got {len(groups)}.")
        if any(not group or any(not literal for literal in group) for group in groups):
            raise ValueError("Every group of literals must be non-empty and hold non-empty strings.")
        self.groups = [list(group) for group in groups]
        self.byte_class, self.delta, self.output = _automaton(self.groups)

    def masks(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """The uint64 mask of each text (0 for a null text)."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        if not pa.types.is_large_string(texts.type):
            texts = texts.cast(pa.large_string())
        masks = np.zeros(len(texts), dtype=np.uint64)
        if len(texts) == 0:
            return masks
        _, offsets_buffer, data_buffer = texts.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[texts.offset: texts.offset + len(texts) + 1]
        data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
        _scan(data, offsets, self.byte_class, self.delta, self.output, masks)
        if texts.null_count:  # Arrow lets a null's slot hold bytes: never read them as text
            masks[np.asarray(texts.is_null())] = 0
        return masks

    @contextmanager
    def registered(self, con: duckdb.DuckDBPyConnection) -> Iterator[str]:
        """Register the scanner as a SQL function ``name(VARCHAR) -> UBIGINT`` on ``con`` for a block."""
        name = f"_thresher_literals_{next(_names)}"
        con.create_function(name, lambda texts: pa.array(self.masks(texts), pa.uint64()), ["VARCHAR"], "UBIGINT",
                            type="arrow")
        try:
            yield name
        finally:
            con.remove_function(name)


def _automaton(groups: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The automaton: each byte's class, the transitions (state x class) and each state's group bits.

    Bytes that occur in no literal share class 0, whose transitions all lead back to the root, so
    the table has one column per distinct literal byte plus one.
    """
    encoded = [[literal.encode("utf-8") for literal in group] for group in groups]
    alphabet = sorted({byte for group in encoded for literal in group for byte in literal})
    byte_class = np.zeros(256, dtype=np.int32)
    byte_class[alphabet] = np.arange(1, len(alphabet) + 1)
    children: list[dict[int, int]] = [{}]
    output = [0]
    for bit, group in enumerate(encoded):
        for literal in group:
            state = 0
            for byte in literal:
                symbol = int(byte_class[byte])
                if symbol not in children[state]:
                    children.append({})
                    output.append(0)
                    children[state][symbol] = len(children) - 1
                state = children[state][symbol]
            output[state] |= 1 << bit
    delta = np.zeros((len(children), len(alphabet) + 1), dtype=np.int32)
    fail = [0] * len(children)
    queue: deque[int] = deque()
    for symbol, child in children[0].items():
        delta[0, symbol] = child
        queue.append(child)
    while queue:  # breadth first: a state's fallback row is complete before the state's
        state = queue.popleft()
        output[state] |= output[fail[state]]
        delta[state] = delta[fail[state]]
        for symbol, child in children[state].items():
            fail[child] = int(delta[fail[state], symbol])
            delta[state, symbol] = child
            queue.append(child)
    return byte_class, delta, np.array(output, dtype=np.uint64)
