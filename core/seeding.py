"""Seeded initial weights for torch modules without touching the caller's random state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def seeded_init(seed: int | None) -> Iterator[None]:
    """Build torch modules inside this block for initial weights fixed by ``seed``.

    torch draws a module's initial weights from its global generator, and takes no generator for
    them. The global state is forked for the block and restored after it, so library code never
    changes the random state of the program that calls it (STYLE.md, randomness).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield
