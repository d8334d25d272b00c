"""Data selection towards a target set: CoLoR-Filter and GIO (library classes; not yet a stage)."""

from reweighting.select.color_filter import ColorFilter, budget_count
from reweighting.select.gio import GIO, knn_kl

__all__ = ["ColorFilter", "GIO", "budget_count", "knn_kl"]
