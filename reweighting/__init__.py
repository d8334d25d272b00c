"""Noise detection, per-item weights learned in training, and (later) selection over labelled items."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "DetectConfig": "reweighting.stage",
    "DetectSummary": "reweighting.stage",
    "detect": "reweighting.stage",
    "ReweightConfig": "reweighting.reweight",
    "ReweightSummary": "reweighting.reweight",
    "reweight": "reweighting.reweight",
    "compute_weights": "reweighting.weights",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
