"""Train a small torch classifier with learned or loss-based per-sample weights.

``strategy="storm"`` is STORM (Heck et al., AAAI 2025): at every step a rescaler maps each
sample's statistics to a weight in (0, 1); a differentiable Adam step on the weighted loss gives
the virtual parameters; a meta batch drawn uniformly from the same noisy training set is scored
with them, its loss rescaled by the same rescaler; the rescaler learns from that meta loss
through both paths, and the model keeps the virtual step. No clean data is used.
``linupper`` / ``quadratic`` / ``extremes`` are the rules of :mod:`thresher.reweighting.rescale.loss_rules`;
``uniform`` is plain training, the baseline.

The model's optimizer is a functional Adam, so the inner step is differentiable. By default
(``optimizer="adam_reset"``) its moments restart at every step, as in the reference code, whose
``higher`` optimizer starts from an empty state each step: every step then moves each parameter
with a non-zero gradient by about ``lr`` (a sign step). ``optimizer="adam"`` carries the moments
over (textbook Adam); benchmarks/README.md measures both. Where this differs from the reference:
the rescaler's statistics are inputs, so no gradient flows through them into the classifier;
``simulate_only`` learns the rescaler exactly as STORM does but trains the model on unweighted
losses (in the reference the rescaler then gets no signal at all).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from thresher.reweighting.rescale.base import STRATEGIES, Optimizer, Strategy  # noqa: F401 (re-exported)
from thresher.reweighting.rescale.loss_rules import loss_rule_weights
from thresher.reweighting.rescale.memory import N_STAT_FEATURES, PassStats, StatsMemory
from thresher.reweighting.rescale.rescaler import Rescaler
from thresher.reweighting.weights import FLAG_BELOW
from thresher.core.device import resolve_device
from thresher.core.seeding import seeded_init
from thresher.core.progress import track


_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


def _classifier(n_features: int, n_classes: int, hidden: int) -> nn.Module:
    if hidden == 0:
        return nn.Linear(n_features, n_classes)
    return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def _adam(params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], state: dict[str, torch.Tensor],
          step: int, lr: float) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One Adam step as a function: differentiable in ``grads`` when they carry a graph.

    ``state`` holds the detached first and second moments; the new moments are returned with
    their graph, and the caller detaches them once the step is taken.
    """
    b1, b2 = _BETAS
    new_params, new_state = {}, {}
    for name, p in params.items():
        g = grads[name]
        m = b1 * state[f"m.{name}"] + (1 - b1) * g
        v = b2 * state[f"v.{name}"] + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** step), v / (1 - b2 ** step)
        # + 1e-16 inside the root: its derivative at v = 0 (features absent so far) is finite.
        new_params[name] = p - lr * m_hat / ((v_hat + 1e-16).sqrt() + _ADAM_EPS)
        new_state[f"m.{name}"], new_state[f"v.{name}"] = m, v
    return new_params, new_state


class Reweighter(ClassifierMixin, BaseEstimator):
    """A linear model or MLP over fixed features, trained with per-sample loss weights.

    After :meth:`fit`: ``weights_`` (each training row's weight in the last epoch),
    ``weight_history_`` (epochs x rows), ``flagged_`` (``weights_ < flag_below``),
    ``epoch_log_`` (per-epoch seconds, mean weight, rows flagged, validation score) and
    ``best_epoch_`` (the epoch whose parameters are kept: the best on ``eval_set``, else the last).

    Parameters follow the STORM paper's TF-IDF setting by default: batch 32, Adam lr 5e-2 restarted
    each step as in its reference code, 10 epochs, dropout 0.1 on the inputs of the extra passes,
    G = 3 passes, rescaler Adam lr 1e-2.

    ``device`` (``auto``, ``cpu``, ``cuda[:N]``) holds the model, the rescaler, their optimiser state,
    the labels and dense features; a step never waits for the device. The random draws (batch order,
    meta batches, dropout) come from CPU generators on every device, so a GPU run follows the CPU
    run's draws and differs from it only by float rounding. ``precision="bfloat16"`` runs the
    classifier's passes under autocast (the rescaler and the weights stay float32).
    """

    def __init__(
        self, strategy: Strategy = "storm", *, hidden: int = 0, lr: float = 5e-2, batch_size: int = 32,
        epochs: int = 10, dropout: float = 0.1, forward_passes: int = 3, rescaler_lr: float = 1e-2,
        optimizer: Optimizer = "adam_reset", rescaler_features: Literal["all", "loss"] = "all", class_separation: bool = True,
        categories: bool = True, meta_loss_rescaling: bool = True, simulate_only: bool = False,
        temperature: float = 1.0, burn_in_steps: int = 0,
        device: str = "cpu", precision: Literal["float32", "bfloat16"] = "float32",
        random_state: int = 0, progress: bool = False,
    ) -> None:
        self.strategy = strategy
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.dropout = dropout
        self.forward_passes = forward_passes
        self.rescaler_lr = rescaler_lr
        self.optimizer = optimizer
        self.rescaler_features = rescaler_features
        self.class_separation = class_separation
        self.categories = categories
        self.meta_loss_rescaling = meta_loss_rescaling
        self.simulate_only = simulate_only
        self.temperature = temperature
        self.burn_in_steps = burn_in_steps
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.progress = progress

    # ----------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"The 'strategy' parameter must be one of {STRATEGIES}. Got {self.strategy!r} instead.")
        if self.optimizer not in Optimizer.__args__:
            raise ValueError(f"The 'optimizer' parameter must be one of {Optimizer.__args__}. Got {self.optimizer!r} instead.")
        if self.rescaler_features not in ("all", "loss"):
            raise ValueError(f"The 'rescaler_features' parameter must be 'all' or 'loss'. Got {self.rescaler_features!r}.")
        for name in ("batch_size", "epochs", "forward_passes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"The '{name}' parameter must be >= 1. Got {getattr(self, name)} instead.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"The 'dropout' parameter must be in [0, 1). Got {self.dropout} instead.")
        if self.lr <= 0 or self.rescaler_lr <= 0 or self.temperature <= 0:
            raise ValueError("lr, rescaler_lr and temperature must be > 0.")
        if self.hidden < 0:
            raise ValueError(f"The 'hidden' parameter must be >= 0 (0: linear). Got {self.hidden} instead.")
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"The 'precision' parameter must be 'float32' or 'bfloat16'. Got {self.precision!r} instead.")

    @staticmethod
    def _check_X(X) -> np.ndarray | sp.csr_matrix:
        if sp.issparse(X):
            return sp.csr_matrix(X, dtype=np.float32)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (rows x features). Got shape {X.shape} instead.")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values.")
        return X

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A host tensor on the training device; pinned first on a GPU, so the copy does not block."""
        if self._device.type == "cpu":
            return x
        return x.pin_memory().to(self._device, non_blocking=True)

    def _dense(self, rows, *, dropout: bool = False) -> torch.Tensor:
        """A batch as a dense tensor on the device; with ``dropout``, its non-zero inputs dropped at
        rate ``dropout``. ``rows`` is a sparse matrix (built on the host, then copied) or a tensor
        already on the device.

        Only non-zero inputs can change, so the draws are made for those alone (sparse TF-IDF
        rows are mostly zeros).
        """
        if sp.issparse(rows):
            if dropout and self.dropout > 0:
                keep = (torch.rand(rows.nnz, generator=self._gen) >= self.dropout).numpy()
                rows = sp.csr_matrix((rows.data * keep / (1 - self.dropout), rows.indices, rows.indptr),
                                     shape=rows.shape)
            return self._to_device(torch.from_numpy(rows.toarray()))
        if dropout and self.dropout > 0:
            keep = self._to_device(torch.rand(rows.shape, generator=self._gen) >= self.dropout)
            return rows * keep / (1 - self.dropout)
        return rows

    def _forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
            return functional_call(self.model_, params, (x,)).float()

    def _passes(self, params, rows, y) -> tuple[torch.Tensor, PassStats]:
        """Loss with graph from the plain pass, plus statistics over all G passes."""
        logits = self._forward(params, self._dense(rows))
        loss = F.cross_entropy(logits, y, reduction="none")
        losses, probs = [loss.detach()], [torch.softmax(logits.detach(), dim=1)]
        with torch.no_grad():
            for _ in range(self.forward_passes - 1):
                extra = self._forward(params, self._dense(rows, dropout=True))
                losses.append(F.cross_entropy(extra, y, reduction="none"))
                probs.append(torch.softmax(extra, dim=1))
        return loss, PassStats.from_passes(torch.stack(losses), torch.stack(probs), y)

    def _weigh(self, memory: StatsMemory, loss: torch.Tensor, stats: PassStats, y: torch.Tensor) -> torch.Tensor:
        groups = y if self.class_separation else torch.zeros_like(y)
        memory.update(stats, groups)
        if self.rescaler_features == "all":
            feats = memory.features(stats, groups)
        else:
            feats = loss.detach().view(-1, 1)
        feats = torch.cat((feats, stats.agree.float().view(-1, 1)), dim=1)
        return self.rescaler_(feats, groups)

    # ----------------------------------------------------------------------------------------
    def fit(self, X, y, *, n_classes: int | None = None, eval_set: tuple | None = None,
            eval_metric: Literal["accuracy", "f1"] = "accuracy") -> "Reweighter":
        """Train on ``X`` (rows x features, dense or sparse) with labels ``y`` in ``[0, K)``.

        ``eval_set=(X_val, y_val)`` keeps the parameters of the epoch with the best
        ``eval_metric`` on it (early stopping as in the paper); the weights are always the
        last epoch's.

        Denormal floats are flushed to zero during training: Adam's second moments of rare sparse
        features underflow into them, and CPU arithmetic on denormals is many times slower.
        """
        torch.set_flush_denormal(True)
        try:
            return self._fit(X, y, n_classes=n_classes, eval_set=eval_set, eval_metric=eval_metric)
        finally:
            torch.set_flush_denormal(False)  # torch's default (it has no getter for the current state)

    def _fit(self, X, y, *, n_classes: int | None, eval_set: tuple | None,
             eval_metric: Literal["accuracy", "f1"]) -> "Reweighter":
        """Train on this data; see :meth:`fit`."""
        self._check_params()
        X = self._check_X(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has shape {y.shape}; they must match.")
        if len(y) == 0:
            raise ValueError("Cannot train on zero rows.")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ValueError("y must hold class ids 0..K-1.")
        K = int(n_classes) if n_classes is not None else int(y.max()) + 1
        if K < 2 or y.max() >= K:
            raise ValueError(f"Need at least two classes and labels below n_classes={K}; got max label {y.max()}.")
        if eval_set is not None:
            X_val, y_val = self._check_X(eval_set[0]), np.asarray(eval_set[1])
            if X_val.shape != (len(y_val), X.shape[1]):
                raise ValueError(f"eval_set must have {X.shape[1]} features and one label per row.")

        rng = np.random.default_rng(self.random_state)  # batch order: the same for every strategy
        meta_rng = np.random.default_rng([self.random_state, 1])  # STORM's meta batches
        self._setup(X, K)
        params, state = self._init_params()
        storm = self.strategy == "storm"
        if storm:
            rescaler_opt = torch.optim.Adam(self.rescaler_.parameters(), lr=self.rescaler_lr)

        n, B = len(y), int(self.batch_size)
        sparse = sp.issparse(X)
        X_device = None if sparse else self._to_device(torch.from_numpy(X))
        y_all = self._to_device(torch.from_numpy(y.astype(np.int64)))

        def rows(index: np.ndarray, index_device: torch.Tensor) -> Any:
            return X[index] if sparse else X_device[index_device]

        self.weight_history_ = np.full((self.epochs, n), np.nan)
        self.epoch_log_: list[dict[str, float]] = []
        best = (-np.inf, None, -1)
        step = 0
        for epoch in track(range(self.epochs), description=f"reweight ({self.strategy}), epochs",
                           enabled=self.progress):
            started = time.perf_counter()
            order = rng.permutation(n)
            order_device = self._to_device(torch.from_numpy(order))
            if storm:  # one draw per epoch: the same numbers as a draw per step
                meta = meta_rng.integers(0, n, size=n)
                meta_device = self._to_device(torch.from_numpy(meta))
            groups = K if self.class_separation else 1
            memory = StatsMemory(groups, B, categories=self.categories, device=self._device)
            meta_memory = StatsMemory(groups, B, categories=self.categories, device=self._device)
            epoch_weights = torch.full((n,), float("nan"), device=self._device)
            for start in range(0, n, B):
                step += 1
                idx, idx_device = order[start:start + B], order_device[start:start + B]
                x, yb = rows(idx, idx_device), y_all[idx_device]
                if storm:
                    meta_idx = meta_device[start:start + B]
                    meta_batch = (rows(meta[start:start + B], meta_idx), y_all[meta_idx])
                    params, state, w = self._storm_step(params, state, step, x, yb, meta_batch,
                                                        memory, meta_memory, rescaler_opt)
                else:
                    params, state, w = self._plain_step(params, state, step, x, yb)
                epoch_weights[idx_device] = w.detach()
            self.weight_history_[epoch] = epoch_weights.cpu().numpy()  # the epoch's one wait for the device
            seconds = time.perf_counter() - started
            self._params = {k: v.detach() for k, v in params.items()}
            entry = {"epoch": epoch, "seconds": seconds,
                     "mean_weight": float(np.nanmean(self.weight_history_[epoch])),
                     "n_flagged": int((self.weight_history_[epoch] < FLAG_BELOW).sum())}
            if eval_set is not None:
                pred = self.predict(X_val)
                score = (float(f1_score(y_val, pred, zero_division=0.0)) if eval_metric == "f1"
                         else float((pred == y_val).mean()))
                entry["eval_" + eval_metric] = score
                if score > best[0]:
                    best = (score, dict(self._params), epoch)
            self.epoch_log_.append(entry)
        if best[1] is not None:
            self._params, self.best_epoch_ = best[1], best[2]
        else:
            self.best_epoch_ = self.epochs - 1
        self.weights_ = self.weight_history_[-1].copy()
        self.flagged_ = self.weights_ < FLAG_BELOW
        del self._gen
        return self

    def _setup(self, X, n_classes: int) -> None:
        """Seed, and build the classifier (and the rescaler for STORM) with their initial weights,
        on the CPU (the same initial weights on every device), then move them to the device."""
        self._device = resolve_device(self.device)
        self._gen = torch.Generator().manual_seed(self.random_state)
        self.classes_ = np.arange(n_classes)
        self.n_features_in_ = X.shape[1]
        with seeded_init(self.random_state):
            self.model_ = _classifier(X.shape[1], n_classes, self.hidden)
            if self.strategy == "storm":
                n_feats = (N_STAT_FEATURES if self.rescaler_features == "all" else 1) + 1  # + agreement flag
                self.rescaler_ = Rescaler(n_feats, n_classes if self.class_separation else 1)
        self.model_.to(self._device)
        if self.strategy == "storm":
            self.rescaler_.to(self._device).train()

    def _init_params(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The classifier's parameters as leaves, and zero Adam moments."""
        params = {k: v.detach().clone().requires_grad_() for k, v in self.model_.named_parameters()}
        state = {f"{s}.{k}": torch.zeros_like(v) for k, v in params.items() for s in ("m", "v")}
        return params, state

    def _moments(self, state: dict[str, torch.Tensor], step: int) -> tuple[dict[str, torch.Tensor], int]:
        """The Adam moments a step starts from: carried over, or fresh (``optimizer='adam_reset'``)."""
        if self.optimizer == "adam_reset":
            return {k: torch.zeros_like(v) for k, v in state.items()}, 1
        return state, step

    def _plain_step(self, params, state, step, x, yb):
        logits = self._forward(params, self._dense(x))
        loss = F.cross_entropy(logits, yb, reduction="none")
        if self.strategy == "uniform" or step <= self.burn_in_steps:
            w = torch.ones_like(loss)
        else:
            w = loss_rule_weights(loss, self.strategy, self.temperature)
        grads = dict(zip(params, torch.autograd.grad((w * loss).mean(), list(params.values()))))
        state, step = self._moments(state, step)
        new_params, new_state = _adam(params, grads, state, step, self.lr)
        return ({k: v.detach().requires_grad_() for k, v in new_params.items()},
                {k: v.detach() for k, v in new_state.items()}, w)

    def _storm_step(self, params, state, step, x, yb, meta_batch, memory, meta_memory, rescaler_opt):
        # Inner: weights from the rescaler, one differentiable Adam step on the weighted sum.
        loss, stats = self._passes(params, x, yb)
        w = self._weigh(memory, loss, stats, yb)
        inner = (loss * w).sum()
        grads = dict(zip(params, torch.autograd.grad(inner, list(params.values()), create_graph=True)))
        state, step = self._moments(state, step)
        virtual, new_state = _adam(params, grads, state, step, self.lr)
        if self.simulate_only:  # the rescaler learns as in STORM; the model will take a plain step
            plain = dict(zip(params, torch.autograd.grad(loss.sum(), list(params.values()), retain_graph=True)))
        # Outer: a meta batch drawn uniformly (with replacement) from the same noisy rows.
        xm, ym = meta_batch
        meta_loss, meta_stats = self._passes(virtual, xm, ym)
        if self.meta_loss_rescaling:
            meta_loss = meta_loss * self._weigh(meta_memory, meta_loss, meta_stats, ym)
        rescaler_opt.zero_grad()
        meta_loss.sum().backward(inputs=list(self.rescaler_.parameters()))
        rescaler_opt.step()
        if self.simulate_only:
            virtual, new_state = _adam(params, plain, state, step, self.lr)
        return ({k: v.detach().requires_grad_() for k, v in virtual.items()},
                {k: v.detach() for k, v in new_state.items()}, w.detach())

    # ----------------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (rows x K) of the kept parameters."""
        if not hasattr(self, "_params"):
            raise ValueError("This Reweighter is not fitted yet: call fit(X, y) first.")
        X = self._check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted on {self.n_features_in_}.")
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], 4096):
                rows = X[start:start + 4096]
                x = self._dense(rows) if sp.issparse(rows) else self._to_device(torch.from_numpy(np.ascontiguousarray(rows)))
                out.append(torch.softmax(self._forward(self._params, x), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)))

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)
