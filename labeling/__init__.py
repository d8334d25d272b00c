"""Labeling: labeling functions, their application, Snorkel denoising and LF analysis."""

from labeling.config import LabelingConfig
from labeling.lf import ABSTAIN, KeywordLF, PythonLF, RegexLF, Row
from labeling.stage import LabelSummary, label

__all__ = ["ABSTAIN", "KeywordLF", "RegexLF", "PythonLF", "Row", "LabelingConfig", "LabelSummary", "label"]
