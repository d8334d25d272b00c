"""Data selection towards a target set: CoLoR-Filter (labelled and language-model modes), GIO and random."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "ColorFilter": "thresher.reweighting.select.color_filter",
    "LMColorFilter": "thresher.reweighting.select.char_lm",
    "GIO": "thresher.reweighting.select.gio",
    "RandomSelection": "thresher.reweighting.select.uniform",
    "Selector": "thresher.reweighting.select.base",
    "SELECTORS": "thresher.reweighting.select.registry",
    "budget_count": "thresher.reweighting.select.color_filter",
    "knn_kl": "thresher.reweighting.select.gio",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
