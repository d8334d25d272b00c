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


_FIELDS = ("loss_mean", "loss_std", "prob_mean", "prob_std", "agree")


class StatsMemory:
    """The last ``window`` samples of each of ``n_groups`` groups, and the features built on them.

    The windows are ring buffers on the statistics' device, updated by scatter: no step waits for
    the device (a GPU run never syncs with the host here). The statistics of a window do not
    depend on the order of its samples, so a ring serves as well as a queue.
    """

    def __init__(self, n_groups: int, window: int, *, categories: bool = True,
                 device: torch.device | str = "cpu") -> None:
        if n_groups < 1 or window < 1:
            raise ValueError(f"n_groups and window must be >= 1. Got {n_groups} and {window} instead.")
        self.n_groups, self.window, self.categories = n_groups, window, categories
        # slot `window` of each group takes the samples a batch pushes out at once (never read)
        self._buffer = torch.zeros((len(_FIELDS), n_groups, window + 1), device=device)
        self._seen = torch.zeros(n_groups, dtype=torch.long, device=device)  # samples ever added per group
        # (group, category, 12) summary statistics; NaN until the group has samples
        self._table = torch.full((n_groups, _CATEGORIES, 12), float("nan"), device=device)

    def update(self, stats: PassStats, groups: torch.Tensor) -> None:
        """Append a batch's samples to their groups' windows and refresh the summaries."""
        one_hot = (groups.view(-1, 1) == torch.arange(self.n_groups, device=groups.device)).long()  # (n, groups)
        rank = (one_hot.cumsum(0) - 1).gather(1, groups.view(-1, 1)).squeeze(1)  # place within its group
        added = one_hot.sum(0)
        keep = rank >= added[groups] - self.window  # a group's last `window` samples of this batch
        slot = torch.where(keep, (self._seen[groups] + rank) % self.window, self.window)
        values = torch.stack([getattr(stats, f).float() for f in _FIELDS])  # (5, n)
        self._buffer[:, groups, slot] = values
        self._seen += added
        self._table = torch.where((self._seen > 0).view(-1, 1, 1), self._summarise(), self._table)

    def _summarise(self) -> torch.Tensor:
        """(groups, 3, 12) statistics of each window per category (all, agreeing, disagreeing)."""
        valid = torch.arange(self.window, device=self._seen.device) < self._seen.clamp(max=self.window).view(-1, 1)
        loss_mean, loss_std, prob_mean, prob_std, agree = self._buffer[:, :, :self.window]
        agree = agree > 0.5
        members = torch.stack((valid, valid & agree, valid & ~agree), dim=1).float()  # (groups, 3, window)
        count = members.sum(dim=2, keepdim=True)

        def mean_std(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            values = values.unsqueeze(1).expand_as(members) if values.dim() == 2 else values
            mean = (members * values).sum(2, keepdim=True) / count.clamp_min(1)
            var = (members * (values - mean) ** 2).sum(2, keepdim=True) / (count - 1).clamp_min(1)
            mean = torch.where(count > 0, mean, torch.full_like(mean, float("nan")))
            std = torch.where(count > 1, var.sqrt(), torch.full_like(var, EPS))
            return mean.squeeze(2), std.squeeze(2)

        lm = mean_std(loss_mean)
        ls = mean_std(loss_std)
        pm = mean_std(prob_mean)
        ps = mean_std(prob_std)
        # Each member against its category's centre: N(mean loss, mean loss std).
        mu, sigma = loss_mean.unsqueeze(1).expand_as(members), loss_std.unsqueeze(1).expand_as(members)
        centre_mu, centre_std = lm[0].unsqueeze(2).expand_as(members), ls[0].unsqueeze(2).expand_as(members)
        kl = mean_std(gaussian_kl(mu, sigma, centre_mu, centre_std).nan_to_num())
        ovl = mean_std(gaussian_overlap(mu, sigma, centre_mu, centre_std).nan_to_num())
        return torch.stack([*lm, *ls, *pm, *ps, *kl, *ovl], dim=2).float()

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
