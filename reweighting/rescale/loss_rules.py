"""Loss-based sample weights of "Dynamic Loss-Based Sample Reweighting" (Sow et al., ICLR 2025).

Per batch: normalise the per-sample losses to [-1, 1], shape them with a strategy, and take the
softmax over the batch with temperature ``r`` (the closed-form solution of maximising the shaped
score minus ``r`` times the KL to uniform weights). Weights are scaled to mean 1.
"""

from __future__ import annotations

from typing import Literal

import torch

LossRule = Literal["linupper", "quadratic", "extremes"]


def shape_losses(losses: torch.Tensor, rule: LossRule, delta: float = 1.0) -> torch.Tensor:
    """The rule's score of each loss after min-max normalisation to [-delta, delta]."""
    lo, hi = losses.min(), losses.max()
    span = (hi - lo).clamp_min(1e-6)
    x = 2 * delta * losses / span - delta * (hi + lo) / span
    if rule == "linupper":  # down-weights the easy half, caps the hard half
        return torch.clamp(x + delta, max=delta)
    if rule == "quadratic":  # favours medium losses
        return 1 - x ** 2 / delta ** 2
    if rule == "extremes":  # favours both ends
        return x.abs()
    raise ValueError(f"The 'rule' parameter must be one of {LossRule.__args__}. Got {rule!r} instead.")


def loss_rule_weights(losses: torch.Tensor, rule: LossRule, r: float = 1.0) -> torch.Tensor:
    """Mean-1 weights over a batch of per-sample ``losses`` (computed without gradient)."""
    if r <= 0:
        raise ValueError(f"The temperature r must be > 0. Got {r} instead.")
    with torch.no_grad():
        f = shape_losses(losses.detach(), rule)
        return torch.softmax((f - f.max()) / r, dim=0) * len(losses)
