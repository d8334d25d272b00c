"""Labeling: labeling functions, their application, Snorkel denoising and LF analysis."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "ABSTAIN": "thresher.labeling.lf",
    "KeywordLF": "thresher.labeling.lf",
    "RegexLF": "thresher.labeling.lf",
    "PythonLF": "thresher.labeling.lf",
    "Row": "thresher.labeling.lf",
    "LabelingConfig": "thresher.labeling.config",
    "LabelSummary": "thresher.labeling.stage",
    "label": "thresher.labeling.stage",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
