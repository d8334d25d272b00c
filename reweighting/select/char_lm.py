"""CoLoR-Filter for unlabelled text: small byte-level language models in torch.

The score of a text is its mean per-token negative log-likelihood under a prior LM minus that
under a conditional LM (the prior fine-tuned on the target texts), as in the paper's released
scorer (one score per sequence, mean over its tokens; here a masked mean, since rows differ in
length). The LM is a causal convolution over UTF-8 bytes: small, fast on a CPU, no tokenizer
to ship. The prior is cross-fitted over ``n_folds`` parts of the pool, so no text is scored by
a prior that was trained on it; each fold's conditional model starts from that fold's prior.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn
from torch.nn import functional as F

from thresher.reweighting.select.color_filter import ScoreSelector
from thresher.core.seeding import seeded_init
from thresher.core.progress import track

BOS = 256  # also the padding id: it is never a target
VOCAB = 257


def encode_bytes(texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of shape (N, max_len): BOS + bytes shifted right, and the bytes; -100 pads."""
    inputs = torch.full((len(texts), max_len), BOS, dtype=torch.long)
    targets = torch.full((len(texts), max_len), -100, dtype=torch.long)
    for i, text in enumerate(texts):
        data = torch.tensor(list(text.encode("utf-8")[:max_len]), dtype=torch.long)
        targets[i, : len(data)] = data
        inputs[i, 1: len(data)] = data[:-1]
    return inputs, targets


class ByteConvLM(nn.Module):
    """Embedding, then dilated causal convolutions with residual connections, then byte logits."""

    def __init__(self, width: int = 64, layers: int = 4, kernel: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.convs = nn.ModuleList(nn.Conv1d(width, width, kernel, dilation=2 ** i) for i in range(layers))
        self.kernel = kernel
        self.out = nn.Linear(width, 256)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        h = self.embed(inputs).transpose(1, 2)  # (N, width, L)
        for conv in self.convs:
            pad = (self.kernel - 1) * conv.dilation[0]
            h = h + F.gelu(conv(F.pad(h, (pad, 0))))
        return self.out(h.transpose(1, 2))  # (N, L, 256)


def _train(model: ByteConvLM, inputs: torch.Tensor, targets: torch.Tensor, *, epochs: int, lr: float,
           batch_size: int, generator: torch.Generator) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(inputs), generator=generator).split(batch_size):
            logits = model(inputs[idx])
            loss = F.cross_entropy(logits.reshape(-1, 256), targets[idx].reshape(-1), ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@torch.no_grad()
def mean_token_nll(model: ByteConvLM, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Per-row mean negative log-likelihood (nats per byte) over the row's own bytes."""
    model.eval()
    out = np.zeros(len(inputs))
    for start in range(0, len(inputs), batch_size):
        logits = model(inputs[start:start + batch_size])
        tgt = targets[start:start + batch_size]
        nll = F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=-100, reduction="none")
        mask = (tgt != -100).float()
        out[start:start + len(tgt)] = ((nll * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy()
    return out


def _check_texts(texts, name: str) -> list[str]:
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{name} must be a list of strings.")
    if not any(t.strip() for t in texts):
        raise ValueError(f"{name} is empty: CoLoR-Filter needs texts to train its language models on.")
    return texts


class LMColorFilter(ScoreSelector, BaseEstimator):
    """Score unlabelled pool texts by how much a target set lowers their language-model loss.

    After ``fit(pool_texts, None, target_texts, None)`` (labels are not read): ``scores_`` (prior minus conditional mean NLL per
    byte, higher = more like the target), ``prior_loss_`` and ``conditional_loss_``.
    ``select(budget)`` returns pool indices, globally or batch-wise like :class:`ColorFilter`.
    """

    def __init__(self, *, n_folds: int = 2, width: int = 64, layers: int = 4, max_len: int = 256,
                 prior_epochs: int = 2, finetune_epochs: int = 5, lr: float = 3e-3, finetune_lr: float = 1e-3,
                 batch_size: int = 64, random_state: int = 0, progress: bool = False) -> None:
        self.n_folds = n_folds
        self.width = width
        self.layers = layers
        self.max_len = max_len
        self.prior_epochs = prior_epochs
        self.finetune_epochs = finetune_epochs
        self.lr = lr
        self.finetune_lr = finetune_lr
        self.batch_size = batch_size
        self.random_state = random_state
        self.progress = progress

    def fit(self, pool_texts, y_pool, target_texts, y_target) -> "LMColorFilter":
        """Cross-fit the prior LMs on the pool, fine-tune each on the target, score every pool text."""
        pool, target = _check_texts(pool_texts, "pool_texts"), _check_texts(target_texts, "target_texts")
        if len(target) >= len(pool):
            raise ValueError(f"The target set ({len(target)} texts) must be smaller than the pool ({len(pool)}).")
        if not 2 <= self.n_folds <= len(pool):
            raise ValueError(f"n_folds must be between 2 and the pool size. Got {self.n_folds} instead.")
        if min(self.prior_epochs, self.finetune_epochs, self.max_len, self.batch_size, self.width, self.layers) < 1:
            raise ValueError("epochs, max_len, batch_size, width and layers must all be >= 1.")
        generator = torch.Generator().manual_seed(self.random_state)
        X, Y = encode_bytes(pool, self.max_len)
        Xt, Yt = encode_bytes(target, self.max_len)
        folds = np.random.default_rng(self.random_state).permutation(len(pool)) % self.n_folds
        prior_loss, cond_loss = np.zeros(len(pool)), np.zeros(len(pool))
        with seeded_init(self.random_state):  # the LMs' initial weights, in fold order
            for fold in track(range(self.n_folds), description="CoLoR-Filter LM folds", enabled=self.progress):
                train = torch.from_numpy(np.flatnonzero(folds != fold))
                held = torch.from_numpy(np.flatnonzero(folds == fold))
                prior = ByteConvLM(self.width, self.layers)
                _train(prior, X[train], Y[train], epochs=self.prior_epochs, lr=self.lr, batch_size=self.batch_size,
                       generator=generator)
                cond = copy.deepcopy(prior)
                _train(cond, Xt, Yt, epochs=self.finetune_epochs, lr=self.finetune_lr, batch_size=self.batch_size,
                       generator=generator)
                prior_loss[held.numpy()] = mean_token_nll(prior, X[held], Y[held])
                cond_loss[held.numpy()] = mean_token_nll(cond, X[held], Y[held])
        self.prior_loss_, self.conditional_loss_ = prior_loss, cond_loss
        self.scores_ = prior_loss - cond_loss
        return self
