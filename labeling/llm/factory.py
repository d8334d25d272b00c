"""The backend a config names: ``build_backend`` imports only the module of that backend.

Adding a backend: a ``Backend`` subclass in its own module, its config in :mod:`thresher.labeling.llm.config`
(a member of the ``LLMConfig`` union, tagged by ``backend``) and one line in ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking
    from thresher.labeling.llm.backend import Backend
    from thresher.labeling.llm.config import LLMConfig

# backend name (the ``backend`` field of the config) -> "module:class"
BACKENDS = {
    "openai": "thresher.labeling.llm.openai_http:OpenAIBackend",
    "embedded": "thresher.labeling.llm.embedded:EmbeddedBackend",
    "transformers": "thresher.labeling.llm.hf_local:TransformersBackend",
}
CHUNKED = {"embedded"}  # backends that encode through a stage's ``chunking`` (a Dask cluster)


def build_backend(config: LLMConfig, *, chunking: Chunking | None = None) -> Backend:
    """The backend ``config`` names; the embedded one encodes through ``chunking`` when given."""
    if config.backend not in BACKENDS:
        raise ValueError(f"The 'backend' parameter of the LLM config must be one of {sorted(BACKENDS)}. "
                         f"Got {config.backend!r} instead.")
    module, _, name = BACKENDS[config.backend].partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(config, chunking=chunking) if config.backend in CHUNKED else cls(config)
