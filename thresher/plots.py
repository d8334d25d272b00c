"""The report's charts as SVG: grouped bars and overlaid histograms, written as text.

Drawn here rather than with matplotlib, whose import and PNG rendering were about 1 s of the 1.7 s
``thresher report`` took on the bundled example (benchmarks/cli_startup.py): the report is a
read-only command that should start in well under 1.5 s. Vector output also stays sharp when zoomed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
FONT = 'font-family="system-ui, sans-serif"'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high].

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0, 730)
    [0.0, 200.0, 400.0, 600.0, 800.0]
    """
    if not high > low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step + 1e-9) * step
    ticks, value = [], start
    while value < high + step * 0.999:
        ticks.append(round(float(value), 10))
        value += step
    return ticks


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:g}"


class _Canvas:
    """An SVG plot area with a y axis, x labels, a legend; coordinates in data units are mapped in."""

    def __init__(self, width: int, height: int, *, bottom: int, y_ticks: list[float]) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 64, 16, 30, bottom
        self.y_low, self.y_high = y_ticks[0], y_ticks[-1]
        self.parts: list[str] = []
        for tick in y_ticks:
            y = self.y(tick)
            self.parts.append(f'<line x1="{self.left}" x2="{width - self.right}" y1="{y:.1f}" y2="{y:.1f}" '
                              'stroke="#e5e5e5"/>')
            self.parts.append(f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" {FONT}>'
                              f"{_number(tick)}</text>")

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    def y(self, value: float) -> float:
        span = self.height - self.top - self.bottom
        return self.height - self.bottom - (value - self.y_low) / (self.y_high - self.y_low) * span

    def rect(self, x: float, width: float, value: float, colour: str, opacity: float = 1.0) -> None:
        if not np.isfinite(value) or value <= self.y_low:
            return
        top = self.y(min(value, self.y_high))
        self.parts.append(f'<rect x="{x:.2f}" y="{top:.2f}" width="{max(width, 0.5):.2f}" '
                          f'height="{self.y(self.y_low) - top:.2f}" fill="{colour}" fill-opacity="{opacity}"/>')

    def x_label(self, x: float, text: str, *, rotate: bool = False) -> None:
        y = self.height - self.bottom + 14
        turn = f' transform="rotate(-55 {x:.1f} {y})"' if rotate else ""
        anchor = "end" if rotate else "middle"
        self.parts.append(f'<text x="{x:.1f}" y="{y}" text-anchor="{anchor}" font-size="10" {FONT}{turn}>'
                          f"{html.escape(text)}</text>")

    def titles(self, x_title: str | None, y_title: str) -> None:
        middle = self.top + (self.height - self.top - self.bottom) / 2
        self.parts.append(f'<text x="14" y="{middle:.1f}" text-anchor="middle" font-size="12" {FONT} '
                          f'transform="rotate(-90 14 {middle:.1f})">{html.escape(y_title)}</text>')
        if x_title:
            self.parts.append(f'<text x="{self.left + self.plot_width / 2:.1f}" y="{self.height - 6}" '
                              f'text-anchor="middle" font-size="12" {FONT}>{html.escape(x_title)}</text>')

    def legend(self, names: Sequence[str], opacity: float = 1.0) -> None:
        """One row of coloured keys above the plot area (never over the data)."""
        x = float(self.left)
        for i, name in enumerate(names):
            colour = COLOURS[i % len(COLOURS)]
            self.parts.append(f'<rect x="{x:.1f}" y="6" width="11" height="11" fill="{colour}" fill-opacity="{opacity}"/>')
            self.parts.append(f'<text x="{x + 15:.1f}" y="16" font-size="11" {FONT}>{html.escape(name)}</text>')
            x += 15 + len(name) * 6.4 + 16

    def svg(self) -> str:
        base = self.y(self.y_low)
        axis = f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{base:.1f}" y2="{base:.1f}" stroke="#333"/>'
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}"><rect width="100%" height="100%" fill="white"/>'
                + "".join(self.parts) + axis + "</svg>")


def bar_chart(categories: Sequence[str], series: dict[str, Sequence[float]], *, y_title: str,
              y_max: float | None = None, width: int = 700, height: int = 320) -> str:
    """Grouped bars: one group per category, one bar per series (NaN: no bar). Long or many category
    names are written slanted."""
    values = np.array([list(v) for v in series.values()], dtype=float).reshape(len(series), len(categories))
    top = y_max if y_max is not None else float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    rotate = len(categories) > 8 or max((len(c) for c in categories), default=0) > 12
    bottom = 24 + (int(min(max(len(c) for c in categories), 28) * 5.2) if rotate else 0)
    canvas = _Canvas(width, height + (bottom - 24), bottom=bottom, y_ticks=nice_ticks(0, top or 1.0))
    group = canvas.plot_width / max(len(categories), 1)
    bar = group * 0.8 / max(len(series), 1)
    for j, row in enumerate(values):
        for i, value in enumerate(row):
            x = canvas.left + i * group + group * 0.1 + j * bar
            canvas.rect(x, bar, value, COLOURS[j % len(COLOURS)])
    for i, name in enumerate(categories):
        canvas.x_label(canvas.left + (i + 0.5) * group, name, rotate=rotate)
    canvas.titles(None, y_title)
    canvas.legend(list(series))
    return canvas.svg()


def histogram(series: dict[str, np.ndarray], *, bins: np.ndarray, x_title: str, y_title: str = "items",
              width: int = 700, height: int = 260) -> str:
    """Overlaid histograms of each series over the same ``bins`` (bin edges), half transparent."""
    counts = {name: np.histogram(values, bins=bins)[0] for name, values in series.items()}
    top = max((int(c.max()) for c in counts.values() if c.size), default=1)
    canvas = _Canvas(width, height, bottom=42, y_ticks=nice_ticks(0, max(top, 1)))
    low, high = float(bins[0]), float(bins[-1])

    def x(value: float) -> float:
        return canvas.left + (value - low) / ((high - low) or 1.0) * canvas.plot_width

    for j, row in enumerate(counts.values()):
        for left, right, count in zip(bins[:-1], bins[1:], row):
            canvas.rect(x(left), x(right) - x(left) - 0.5, float(count), COLOURS[j % len(COLOURS)], opacity=0.6)
    for tick in nice_ticks(low, high):
        if low - 1e-9 <= tick <= high + 1e-9:
            canvas.x_label(x(tick), _number(tick))
    canvas.titles(x_title, y_title)
    canvas.legend(list(series), opacity=0.6)
    return canvas.svg()
