"""Data selection towards a target set: CoLoR-Filter (labelled and language-model modes) and GIO."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "ColorFilter": "reweighting.select.color_filter",
    "LMColorFilter": "reweighting.select.char_lm",
    "GIO": "reweighting.select.gio",
    "budget_count": "reweighting.select.color_filter",
    "knn_kl": "reweighting.select.gio",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
