"""Labeling: labeling functions, their application, Snorkel denoising and LF analysis."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "ABSTAIN": "labeling.lf",
    "KeywordLF": "labeling.lf",
    "RegexLF": "labeling.lf",
    "PythonLF": "labeling.lf",
    "Row": "labeling.lf",
    "LabelingConfig": "labeling.config",
    "LabelSummary": "labeling.stage",
    "label": "labeling.stage",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
