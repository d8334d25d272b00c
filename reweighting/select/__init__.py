"""Data selection towards a target set: CoLoR-Filter (labelled and language-model modes) and GIO."""

from reweighting.select.char_lm import LMColorFilter
from reweighting.select.color_filter import ColorFilter, budget_count
from reweighting.select.gio import GIO, knn_kl

__all__ = ["ColorFilter", "LMColorFilter", "GIO", "budget_count", "knn_kl"]
