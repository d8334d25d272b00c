"""The options of the reweighting strategies, importable without torch (configs and the CLI read them)."""

from __future__ import annotations

from typing import Literal

Strategy = Literal["uniform", "storm", "linupper", "quadratic", "extremes"]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]
Optimizer = Literal["adam", "adam_reset"]
