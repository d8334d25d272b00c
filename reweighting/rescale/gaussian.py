"""Closed-form comparisons of two normal distributions, vectorised over arrays.

STORM describes each sample's loss by a normal N(mean, std) over its dropout passes and compares
it with the normal of the samples in memory: a KL divergence and an overlap coefficient.
"""

from __future__ import annotations

import torch

EPS = 1e-8


def gaussian_kl(mu_p: torch.Tensor, std_p: torch.Tensor, mu_q: torch.Tensor, std_q: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_p, std_p) || N(mu_q, std_q)), elementwise; 0 where either std is 0 (as in STORM)."""
    safe_p = torch.where(std_p > 0, std_p, torch.ones_like(std_p))
    safe_q = torch.where(std_q > 0, std_q, torch.ones_like(std_q))
    kl = torch.log(safe_q / safe_p) + (safe_p ** 2 + (mu_p - mu_q) ** 2) / (2 * safe_q ** 2) - 0.5
    return torch.where((std_p > 0) & (std_q > 0), kl, torch.zeros_like(kl))


def _cdf(x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf((x - mu) / (std * 2 ** 0.5)))


def gaussian_overlap(mu_a: torch.Tensor, std_a: torch.Tensor, mu_b: torch.Tensor, std_b: torch.Tensor) -> torch.Tensor:
    """Overlap coefficient (shared area under both densities) of two normals, in [0, 1].

    Standard deviations are floored at 1e-8. With unequal variances the densities cross at the
    two roots of a quadratic; the overlap is 1 minus the CDF differences at those crossings.
    """
    mu_a, mu_b = mu_a.double(), mu_b.double()
    std_a, std_b = std_a.double().clamp_min(EPS), std_b.double().clamp_min(EPS)
    var_a, var_b = std_a ** 2, std_b ** 2
    dv = var_b - var_a
    dm = (mu_b - mu_a).abs()
    equal = dv.abs() < 1e-12 * torch.maximum(var_a, var_b)
    # Equal variances: the densities cross once, half-way between the means.
    same = 2 * _cdf(-dm / 2, torch.zeros_like(dm), std_a)
    safe_dv = torch.where(equal, torch.ones_like(dv), dv)
    a = mu_a * var_b - mu_b * var_a
    b = std_a * std_b * torch.sqrt(dm ** 2 + dv * torch.log(var_b / var_a))
    x1, x2 = (a + b) / safe_dv, (a - b) / safe_dv
    diff = ((_cdf(x1, mu_b, std_b) - _cdf(x1, mu_a, std_a)).abs()
            + (_cdf(x2, mu_b, std_b) - _cdf(x2, mu_a, std_a)).abs())
    return torch.where(equal, same, 1 - diff).clamp(0, 1).float()
