"""Progress bars for long work, drawn on stderr so stdout stays clean for data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def track(
    items: Iterable[T], *, description: str, enabled: bool = True, total: int | None = None
) -> Iterator[T]:
    """Yield ``items`` while drawing a progress bar when ``enabled``."""
    if not enabled:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with ProgressCounter(description=description, total=total) as bar:
        for item in items:
            yield item
            bar.advance()


class ProgressCounter:
    """A progress bar advanced by hand, for work that arrives in groups (e.g. async answers)."""

    def __init__(self, *, description: str, total: int | None, enabled: bool = True) -> None:
        self._bar: Progress | None = None
        if enabled:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._bar = Progress(*columns, console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task(description, total=total)

    def __enter__(self) -> "ProgressCounter":
        if self._bar is not None:
            self._bar.start()
        return self

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
