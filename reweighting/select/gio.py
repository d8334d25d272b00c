"""GIO (Everaert & Potts, ICLR 2024): pick pool items whose embeddings bring the selected set's
distribution close to the target's, measured by a k-nearest-neighbour KL estimate.

The estimator is the one in the authors' package (``grad-info-opt`` 0.1.2), so KL values are
comparable with it: for target rows x_i (n of them, dimension d) and selected rows y_j (m),

    KL = mean_ij d*log(|x_i - y_j| + eps) - mean_i d*log(rho_k(i) + eps) + mean_l log(k*m / (l*(n-1)))

with rho_k(i) the distance from x_i to its k-th nearest other target row and l = 1..m. It averages
the cross term over every selected row, which makes it smooth in a new point. Greedy selection:
gradient steps move a free point v to lower KL(target | selected + v), v snaps to the nearest
unused pool row, and the loop stops when the KL rises. Like the package, the selection starts
from ``uniform_start`` random unit vectors that count in the KL but are never returned.

Speed: the package recomputes the whole estimate (n x n and n x m distances) at every gradient
step. Here the target term is computed once and the selected rows enter through a running sum,
so a step costs one pass over the n target rows. With ``n_clusters`` the pool is quantised with
k-means, GIO runs on the centroids, and each chosen centroid is expanded to its members.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted

from thresher.core.progress import track

_EPS = 1e-8
_MIN_SQ = 1e-10  # squared distances are clipped here, as in the package


def _as_array(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (rows x dimensions). Got shape {a.shape} instead.")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return a


def _log_dist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log(|x_i - y_j| + eps) for every pair: (len(x), len(y))."""
    sq = (x * x).sum(1)[:, None] - 2 * x @ y.T + (y * y).sum(1)
    return np.log(np.sqrt(np.clip(sq, _MIN_SQ, 1e20)) + _EPS)


def _target_term(x: np.ndarray, k: int) -> float:
    """mean_i log(rho_k(i) + eps): the k-th nearest other target row, computed once."""
    if len(x) <= k:
        raise ValueError(f"The target needs more than k={k} rows for the k-NN estimate. Got {len(x)}.")
    sq = np.clip((x * x).sum(1)[:, None] - 2 * x @ x.T + (x * x).sum(1), _MIN_SQ, 1e20)
    kth = np.partition(sq, k, axis=1)[:, k]  # column 0 is the row itself
    return float(np.log(np.sqrt(kth) + _EPS).mean())


def _count_term(m: int, n: int, k: int) -> float:
    """mean_{l=1..m} log(k*m / (l*(n-1)))."""
    return math.log(k * m / (n - 1)) - math.lgamma(m + 1) / m


def kl_gradient(x: np.ndarray, v: np.ndarray, count: int) -> np.ndarray:
    """d/dv of the KL estimate of (target x | ``count`` selected rows + v), in closed form.

    Only v's own cross terms depend on v, so the selected rows enter only through ``count``.
    NumPy, not torch: these are small single-threaded steps, where torch's thread pool only costs.
    """
    n, d = x.shape
    diff = v - x
    sq = np.einsum("ij,ij->i", diff, diff)
    r = np.sqrt(np.clip(sq, _MIN_SQ, 1e20))
    coef = np.where(sq > _MIN_SQ, 1 / ((r + _EPS) * r), 0.0)
    return d * (coef @ diff) / (n * (count + 1))


def knn_kl(target, selected, k: int = 5) -> float:
    """The package's k-NN estimate of KL(target || selected) (only differences are meaningful)."""
    x, y = _as_array(target, "target"), _as_array(selected, "selected")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"target and selected differ in dimension: {x.shape[1]} vs {y.shape[1]}.")
    d, n, m = x.shape[1], len(x), len(y)
    return float(d * _log_dist(x, y).mean() - d * _target_term(x, k) + _count_term(m, n, k))


class GIO(BaseEstimator):
    """Greedy KL-minimising selection of pool rows towards a target set, in embedding space.

    After ``fit(X_pool, None, X_target, None)`` (labels are not read): ``selected_`` (pool row indices in the order chosen),
    ``kl_path_`` (the KL after each accepted point, on centroids when quantised), ``kl_start_``
    and ``stopped_by`` (``"increase"``, ``"max_points"`` or ``"pool_exhausted"``).

    ``v_init``: where the free point starts each round: the target mean (the package's default),
    a random target row (``"jump"``), or where the last round ended (``"prev_opt"``).
    ``max_points`` caps the number of points (centroids when quantised); ``stop="never"`` keeps
    going after KL increases, up to ``max_points``, for a fixed budget.
    """

    def __init__(self, *, k: int = 5, max_points: int = 1000, grad_steps: int = 50, lr: float = 0.01,
                 v_init: Literal["mean", "jump", "prev_opt"] = "mean", stop: Literal["increase", "never"] = "increase",
                 uniform_start: int = 20, n_clusters: int | None = None, random_state: int = 0,
                 progress: bool = False) -> None:
        self.k = k
        self.max_points = max_points
        self.grad_steps = grad_steps
        self.lr = lr
        self.v_init = v_init
        self.stop = stop
        self.uniform_start = uniform_start
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.progress = progress

    def _check_params(self) -> None:
        if self.k < 1 or self.max_points < 1 or self.grad_steps < 0 or self.uniform_start < 0:
            raise ValueError("k and max_points must be >= 1; grad_steps and uniform_start >= 0.")
        if self.v_init not in ("mean", "jump", "prev_opt"):
            raise ValueError(f"The 'v_init' parameter must be 'mean', 'jump' or 'prev_opt'. Got {self.v_init!r} instead.")
        if self.stop not in ("increase", "never"):
            raise ValueError(f"The 'stop' parameter must be 'increase' or 'never'. Got {self.stop!r} instead.")
        if self.n_clusters is not None and self.n_clusters < 2:
            raise ValueError(f"n_clusters must be >= 2 or None. Got {self.n_clusters} instead.")

    def fit(self, X_pool, y_pool, X_target, y_target) -> "GIO":
        """Select pool rows (``X_pool``: N x d) that bring the selection close to ``X_target`` (n x d)."""
        self._check_params()
        x, g = _as_array(X_target, "target"), _as_array(X_pool, "pool")
        self.n_pool_ = len(g)
        if x.shape[1] != g.shape[1]:
            raise ValueError(f"target and pool differ in dimension: {x.shape[1]} vs {g.shape[1]}.")
        rng = np.random.default_rng(self.random_state)
        labels = None
        if self.n_clusters is not None and self.n_clusters < len(g):
            km = KMeans(self.n_clusters, n_init=1, random_state=self.random_state).fit(g)
            labels, g = km.labels_, km.cluster_centers_
        n, d = x.shape
        target_term = _target_term(x, self.k)

        start = rng.uniform(-1, 1, (self.uniform_start, d))
        start = start / np.maximum(np.linalg.norm(start, axis=1, keepdims=True), 1e-12)
        log_sum = float(_log_dist(x, start).sum()) if self.uniform_start else 0.0
        m = self.uniform_start

        def kl(total: float, count: int) -> float:
            return d * total / (n * count) - d * target_term + _count_term(count, n, self.k)

        mean = x.mean(0)
        v = x[int(rng.integers(n))].copy() if self.v_init == "jump" else mean.copy()
        g_sq = (g * g).sum(1)
        # The package's scale_factor="auto", at the first free point: for "jump" a target row, where
        # the gradient is steep, so the point moves little and lands near that row.
        scale = float(np.linalg.norm(v) / max(np.linalg.norm(kl_gradient(x, v, m)), 1e-12))

        self.kl_start_ = kl(log_sum, m) if m else float("nan")
        kl_prev = self.kl_start_
        used = np.zeros(len(g), dtype=bool)
        chosen: list[int] = []
        self.kl_path_: list[float] = []
        self.stopped_by = "max_points"
        for rnd in track(range(min(self.max_points, len(g))), description="GIO", enabled=self.progress):
            for _ in range(self.grad_steps * (3 if rnd == 0 else 1)):
                v = v - self.lr * scale * kl_gradient(x, v, m)
            dist = g_sq - 2 * g @ v
            dist[used] = np.inf
            j = int(np.argmin(dist))
            new_sum = log_sum + float(_log_dist(x, g[j:j + 1]).sum())
            kl_new = kl(new_sum, m + 1)
            if self.stop == "increase" and m > 0 and kl_new > kl_prev:
                self.stopped_by = "increase"
                break
            used[j] = True
            chosen.append(j)
            log_sum, m, kl_prev = new_sum, m + 1, kl_new
            self.kl_path_.append(kl_new)
            if self.v_init == "mean":
                v = mean.copy()
            elif self.v_init == "jump":
                v = x[int(rng.integers(n))].copy()
        else:
            if len(chosen) == len(g):
                self.stopped_by = "pool_exhausted"
        if labels is None:
            self.selected_ = np.array(chosen, dtype=np.int64)
        else:  # expand each chosen centroid to its members, in the order the centroids were chosen
            self.selected_ = np.concatenate([np.flatnonzero(labels == c) for c in chosen]).astype(np.int64) \
                if chosen else np.zeros(0, dtype=np.int64)
        self.centroids_chosen_ = np.array(chosen, dtype=np.int64) if labels is not None else None
        return self

    def select(self, budget: int | float) -> np.ndarray:
        """The first ``budget`` pool rows chosen (fewer when the search stopped earlier)."""
        from thresher.reweighting.select.color_filter import budget_count

        check_is_fitted(self, "selected_")
        return self.selected_[:budget_count(budget, self.n_pool_)]
