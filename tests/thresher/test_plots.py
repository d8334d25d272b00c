"""The report's SVG charts: valid SVG whose bars are as tall as the numbers they show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from thresher.plots import COLOURS, bar_chart, histogram

SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> dict[str, list[float]]:
    """Colour -> heights of the data rectangles (the background and legend keys left out)."""
    found: dict[str, list[float]] = {}
    for rect in ET.fromstring(svg).iter(f"{SVG}rect"):
        if rect.get("fill") in COLOURS and float(rect.get("height")) != 11:
            found.setdefault(rect.get("fill"), []).append(float(rect.get("height")))
    return found


def test_bar_heights_follow_the_values_and_nan_draws_no_bar():
    svg = bar_chart(["HAM", "SPAM"], {"given": [0.5, float("nan")], "exported": [1.0, 0.25]}, y_title="share", y_max=1.0)
    heights = bars(svg)
    assert len(heights[COLOURS[0]]) == 1 and len(heights[COLOURS[1]]) == 2  # no bar for NaN
    full = heights[COLOURS[1]][0]
    np.testing.assert_allclose([heights[COLOURS[0]][0], heights[COLOURS[1]][1]], [full / 2, full / 4], rtol=1e-3)
    assert "HAM" in svg and "exported" in svg


def test_histogram_bars_count_the_items_per_bin_and_names_are_escaped():
    values = np.array([0.05, 0.05, 0.05, 0.15, 0.95])
    svg = histogram({"kept <all>": values}, bins=np.linspace(0, 1, 11), x_title="score & more")
    heights = sorted(bars(svg)[COLOURS[0]])
    assert len(heights) == 3 and np.isclose(heights[-1], 3 * heights[0], rtol=1e-3)
    assert "kept &lt;all&gt;" in svg and "score &amp; more" in svg  # and it parsed as XML above
