"""Handing freed memory back to the system between the big steps of a stage."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    glibc keeps the pages of large freed objects (Python lists, NumPy and Arrow buffers) for reuse,
    so a process that finished a big step would hold that step's memory through the next one, and
    through any worker processes started meanwhile."""
    function = _malloc_trim()
    if function is not None:
        function(0)
