"""STORM's rescaler: a tiny network per class that maps a sample's statistics to a loss weight."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _Head(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear(2) -> BatchNorm -> softmax; the weight is one component.

    The BatchNorms have no affine parameters. The last one standardises the two logits over the
    batch, which keeps the weights from collapsing to 0 for every sample. A batch of one sample
    cannot be normalised by its own statistics, so it uses the running ones.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_features, n_features)
        self.out = nn.Linear(n_features, 2)
        self.bn_hidden = nn.BatchNorm1d(n_features, affine=False)
        self.bn_out = nn.BatchNorm1d(2, affine=False)
        for layer in (self.hidden, self.out):  # small weights: near-uniform weights at the start
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def _norm(self, bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        use_batch = self.training and x.shape[0] > 1
        return F.batch_norm(x, bn.running_mean, bn.running_var, training=use_batch,
                            momentum=bn.momentum, eps=bn.eps)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = F.relu(self._norm(self.bn_hidden, self.hidden(features)))
        return torch.softmax(self._norm(self.bn_out, self.out(h)), dim=1)[:, 1]


class Rescaler(nn.Module):
    """One head per class (``n_heads = K``) or one shared head (``n_heads = 1``).

    Every head sees the whole batch, so its BatchNorm statistics are the batch's; each sample
    takes the weight of its own class's head.
    """

    def __init__(self, n_features: int, n_heads: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(_Head(n_features) for _ in range(n_heads))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Weights in (0, 1), shape ``(n,)``, for ``features`` (n, F) and given ``labels`` (n,)."""
        if len(self.heads) == 1:
            return self.heads[0](features)
        weights = torch.stack([head(features) for head in self.heads], dim=1)  # (n, K)
        return weights.gather(1, labels.view(-1, 1)).squeeze(1)
