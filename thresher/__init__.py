"""thresher: weak supervision and noisy-label curation from raw rows to weighted training shards.

From Python (a notebook): ``thresher.Pipeline(config, data=frame).run()`` runs every configured stage
and returns the labels, noise scores, weights and selection as DataFrames; see ``thresher.pipeline.api``.
"""

from thresher.core.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Pipeline": "thresher.pipeline.api",
    "RunResult": "thresher.pipeline.api",
    "PipelineConfig": "thresher.pipeline.config",
    "load_config": "thresher.pipeline.config",
    "config_from_dict": "thresher.pipeline.config",
}
__all__ = ["__version__", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
