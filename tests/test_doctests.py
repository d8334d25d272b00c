"""The examples in docstrings run (every project module that has one)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.test_layers import _modules

WITH_EXAMPLES = sorted(m for m, path in _modules().items() if ">>>" in path.read_text())


def test_modules_with_examples_are_found() -> None:
    assert "thresher.labeling.matrix" in WITH_EXAMPLES


@pytest.mark.parametrize("module", WITH_EXAMPLES)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
