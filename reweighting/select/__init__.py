"""Data selection towards a target set (CoLoR-Filter; GIO is planned)."""

from reweighting.select.color_filter import ColorFilter, budget_count

__all__ = ["ColorFilter", "budget_count"]
