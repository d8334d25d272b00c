"""Where a stage's heavy work runs: the chunking type every stage accepts (a Dask cluster or this process)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# map_chunks(function, arguments) -> results: runs function(*args) for each args, anywhere.
MapChunks = Callable[[Callable[..., Any], Sequence[tuple]], list[Any]]


@dataclass(frozen=True)
class Chunking:
    """Where heavy work runs: ``map_chunks`` over chunks of ``rows``; parts are written in ``directory``;
    ``slots`` chunks run at once."""

    map_chunks: MapChunks
    rows: int = 250_000
    directory: Path | None = None
    slots: int = 1
