"""STORM's per-sample statistics and the memory of recent samples they are compared with.

Each sample is seen through G forward passes (the first without dropout, the others with it):
the mean and standard deviation of its loss and of its top-class probability describe how sure
and how stable the model is about it. The memory keeps the last ``window`` samples of each
group (the sample's given class, or one group without class separation) and summarises them
per agreement category: 0 = all, 1 = the model agrees with the label, 2 = it disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from thresher.reweighting.rescale.gaussian import EPS, gaussian_kl, gaussian_overlap

N_STAT_FEATURES = 18  # the rescaler also gets the agreement flag: 19 in all
_CATEGORIES = 3


@dataclass(frozen=True)
class PassStats:
    """Per-sample statistics over G forward passes (all detached, shape ``(n,)``)."""

    loss_mean: torch.Tensor
    loss_std: torch.Tensor
    prob_mean: torch.Tensor
    prob_std: torch.Tensor
    agree: torch.Tensor  # bool: majority prediction over the passes equals the given label

    @classmethod
    def from_passes(cls, losses: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor) -> "PassStats":
        """``losses`` (G, n), ``probs`` (G, n, K) from G passes; pass 0 breaks agreement ties."""
        losses, probs = losses.detach(), probs.detach()
        G = losses.shape[0]
        top = probs.max(dim=2).values
        preds = probs.argmax(dim=2)
        votes = (preds == labels).sum(dim=0)
        agree = torch.where(2 * votes == G, preds[0] == labels, 2 * votes > G)

        def std(x: torch.Tensor) -> torch.Tensor:
            return x.std(dim=0).nan_to_num() if G > 1 else torch.zeros_like(x[0])

        return cls(losses.mean(0), std(losses), top.mean(0), std(top), agree)

    def take(self, index: torch.Tensor) -> "PassStats":
        return PassStats(self.loss_mean[index], self.loss_std[index], self.prob_mean[index],
                         self.prob_std[index], self.agree[index])


def _cat(a: PassStats, b: PassStats) -> PassStats:
    return PassStats(*(torch.cat((getattr(a, f), getattr(b, f))) for f in
                       ("loss_mean", "loss_std", "prob_mean", "prob_std", "agree")))


class StatsMemory:
    """The last ``window`` samples of each of ``n_groups`` groups, and the features built on them."""

    def __init__(self, n_groups: int, window: int, *, categories: bool = True) -> None:
        if n_groups < 1 or window < 1:
            raise ValueError(f"n_groups and window must be >= 1. Got {n_groups} and {window} instead.")
        self.n_groups, self.window, self.categories = n_groups, window, categories
        self._kept: list[PassStats | None] = [None] * n_groups
        # (group, category, 14): the 12 summary statistics plus the centre (mean loss, mean loss std)
        self._table = torch.full((n_groups, _CATEGORIES, 12), float("nan"))

    def update(self, stats: PassStats, groups: torch.Tensor) -> None:
        """Append a batch's samples to their groups' windows and refresh those groups' summaries."""
        for g in torch.unique(groups).tolist():
            new = stats.take(groups == g)
            kept = new if self._kept[g] is None else _cat(self._kept[g], new)
            if len(kept.agree) > self.window:
                kept = kept.take(torch.arange(len(kept.agree) - self.window, len(kept.agree)))
            self._kept[g] = kept
            self._table[g] = self._summarise(kept)

    @staticmethod
    def _summarise(kept: PassStats) -> torch.Tensor:
        """(3, 12) statistics of the kept samples per category (all, agreeing, disagreeing)."""
        members = torch.stack((torch.ones_like(kept.agree), kept.agree, ~kept.agree)).float()  # (3, m)
        count = members.sum(dim=1, keepdim=True)

        def mean_std(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            values = values.expand_as(members)
            mean = (members * values).sum(1, keepdim=True) / count.clamp_min(1)
            var = (members * (values - mean) ** 2).sum(1, keepdim=True) / (count - 1).clamp_min(1)
            mean = torch.where(count > 0, mean, torch.full_like(mean, float("nan")))
            std = torch.where(count > 1, var.sqrt(), torch.full_like(var, EPS))
            return mean.squeeze(1), std.squeeze(1)

        lm = mean_std(kept.loss_mean)
        ls = mean_std(kept.loss_std)
        pm = mean_std(kept.prob_mean)
        ps = mean_std(kept.prob_std)
        # Each member against its category's centre: N(mean loss, mean loss std).
        mu, sigma = kept.loss_mean.expand_as(members), kept.loss_std.expand_as(members)
        centre_mu, centre_std = lm[0].view(-1, 1).expand_as(members), ls[0].view(-1, 1).expand_as(members)
        kl = mean_std(gaussian_kl(mu, sigma, centre_mu, centre_std).nan_to_num())
        ovl = mean_std(gaussian_overlap(mu, sigma, centre_mu, centre_std).nan_to_num())
        return torch.stack([*lm, *ls, *pm, *ps, *kl, *ovl], dim=1).float()

    def features(self, stats: PassStats, groups: torch.Tensor) -> torch.Tensor:
        """The (n, 18) statistics of each sample next to its group and category in memory.

        Call :meth:`update` with the batch first, so every sample's own cell is non-empty.
        """
        category = (2 - stats.agree.long()) if self.categories else torch.zeros_like(groups)
        t = self._table[groups, category]  # (n, 12)
        kl = gaussian_kl(stats.loss_mean, stats.loss_std, t[:, 0], t[:, 2])
        ovl = gaussian_overlap(stats.loss_mean, stats.loss_std, t[:, 0], t[:, 2])
        columns = [stats.loss_mean, t[:, 0], t[:, 1], stats.loss_std, t[:, 2], t[:, 3],
                   stats.prob_mean, t[:, 4], t[:, 5], stats.prob_std, t[:, 6], t[:, 7],
                   kl, t[:, 8], t[:, 9], ovl, t[:, 10], t[:, 11]]
        return torch.stack(columns, dim=1).float().nan_to_num()
