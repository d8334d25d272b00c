"""The fast path: a static embedding model distilled offline from the packaged MiniLM (model2vec).

model2vec passes every vocabulary token through all-MiniLM-L6-v2 once, reduces the token vectors
with PCA and weights them by token frequency; encoding a text is then a tokenizer call and a mean of
looked-up vectors, with no transformer forward pass. It runs at tens of thousands of texts per
second on 2 cores (measured 32,000), against ~115-235 for the full model. Its similarities agree
only loosely with the full model's, yet noise detection on its vectors scored higher in
``benchmarks/embeddings.py``. Distilling takes ~12 s; the result is stored once per machine under
``$THRESHER_CACHE_DIR`` (default ``~/.cache/thresher``) and reused by every later run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from thresher.features.sentence import offline_minilm_path

logger = logging.getLogger(__name__)

MINILM_STATIC = "minilm-static"


def cache_dir() -> Path:
    """Where distilled models live: ``$THRESHER_CACHE_DIR`` or ``~/.cache/thresher``."""
    return Path(os.environ.get("THRESHER_CACHE_DIR", Path.home() / ".cache" / "thresher"))


class StaticEncoder:
    """Encode texts with a model2vec static model distilled from the packaged MiniLM.

    ``name`` carries a hash of the distilled weights, so cached vectors from a different distillation
    (another model2vec version, other ``pca_dims``) are never mixed with these.
    """

    def __init__(self, *, pca_dims: int = 256, directory: Path | None = None) -> None:
        if pca_dims < 2 or pca_dims > 384:
            raise ValueError(f"pca_dims must be between 2 and 384 (MiniLM's width). Got {pca_dims} instead.")
        self.pca_dims = pca_dims
        self.directory = directory
        self.dimension = pca_dims
        self._model = None
        self._digest = ""

    @property
    def name(self) -> str:
        self.setup()
        return f"{MINILM_STATIC}-{self.pca_dims}-{self._digest}"

    def _model_dir(self) -> Path:
        import model2vec

        return (self.directory or cache_dir()) / f"{MINILM_STATIC}-{self.pca_dims}-model2vec{model2vec.__version__}"

    def setup(self) -> None:
        """Load the distilled model, distilling it first if this machine has none yet."""
        if self._model is not None:
            return
        from model2vec import StaticModel

        target = self._model_dir()
        if not (target / "model.safetensors").is_file():
            self._distill(target)
        self._model = StaticModel.from_pretrained(str(target))
        self._digest = hashlib.sha256((target / "model.safetensors").read_bytes()).hexdigest()[:12]

    def _distill(self, target: Path) -> None:
        try:
            from model2vec.distill import distill
        except ImportError as exc:  # pragma: no cover - model2vec[distill] is a dependency of thresher
            raise ImportError("The static encoder needs: pip install 'model2vec[distill]'") from exc
        logger.info("Distilling a %d-dimensional static model from MiniLM into %s (once per machine)",
                    self.pca_dims, target)
        model = distill(model_name=str(offline_minilm_path()), pca_dims=self.pca_dims)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            model.save_pretrained(str(staging))
            try:
                staging.rename(target)  # atomic: a concurrent or killed distillation never leaves half a model
            except OSError:
                if not (target / "model.safetensors").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """N x ``pca_dims`` float32 embeddings, in the order of ``texts``."""
        self.setup()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._model.encode(texts, show_progress_bar=progress).astype(np.float32)
