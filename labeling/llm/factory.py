"""The backend a config names: ``build_backend`` imports only the module of that backend.

Adding a backend: a ``Backend`` subclass in its own module and its config in
:mod:`thresher.labeling.llm.config` (a ``BackendConfig`` subclass with the ``code`` of that class and
its ``chunked`` capability, listed in ``BACKENDS``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from thresher.labeling.llm.config import BACKENDS

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking
    from thresher.labeling.llm.backend import Backend
    from thresher.labeling.llm.config import LLMConfig

__all__ = ["BACKENDS", "build_backend"]


def build_backend(config: LLMConfig, *, chunking: Chunking | None = None) -> Backend:
    """The backend ``config`` names; one that computes through chunking gets ``chunking`` when given."""
    module, _, name = config.code.partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(config, chunking=chunking) if config.chunked else cls(config)
