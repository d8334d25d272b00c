"""Lazy re-exports for package ``__init__`` modules (PEP 562): a name is imported on first use.

A package that re-exports its public names eagerly makes ``import pkg.small_module`` pay for every
heavy sibling (torch, scikit-learn, cleanlab); ``thresher check`` and ``thresher --help`` must not.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, which re-exports ``name -> module``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
