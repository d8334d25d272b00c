"""Denoise LF votes into probabilistic labels: Snorkel's LabelModel, majority vote, or Dawid-Skene
(crowd-kit), one of them chosen without gold labels by ``model: auto``."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from thresher.labeling.auto import choose_model
from thresher.labeling.config import DenoiseConfig
from thresher.core.plugins import object_token
from thresher.labeling.label_models import LABEL_MODELS, MajorityVote, build_label_model
from thresher.labeling.lf.base import ABSTAIN
from thresher.labeling.ties import hard_labels


@dataclass
class Denoised:
    """The chosen model's class probabilities for every item, and what was chosen.

    ``learned_accuracy`` holds the LabelModel's estimated accuracy of each LF (None for
    majority vote); ``selection`` lists every candidate's dev score when selection ran.
    """

    probs: np.ndarray
    params: dict[str, Any]
    learned_accuracy: np.ndarray | None = None
    selection: list[dict[str, Any]] = field(default_factory=list)


def score(y: np.ndarray, predicted: np.ndarray, metric: str) -> float:
    """Accuracy, F1 of class 1 (binary), or macro F1."""
    from sklearn.metrics import f1_score  # imported where used: torch, snorkel and sklearn load in seconds

    if metric == "accuracy":
        return float((y == predicted).mean())
    if metric == "f1":
        return float(f1_score(y, predicted, pos_label=1, average="binary", zero_division=0))
    return float(f1_score(y, predicted, average="macro", zero_division=0))


def vote_patterns(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the distinct rows of L, the index of one item with each; for every item, its pattern's
    number. A label model's output depends on an item's votes alone, so it is computed once per
    pattern (a few thousand, not 10M)."""
    L = np.asarray(L)
    if L.ndim != 2:
        raise ValueError(f"L must be a 2-d label matrix; got an array of shape {L.shape}.")
    base = int(L.max(initial=0)) + 2  # votes -1..K-1 shifted to 0..K
    if L.shape[1] and base ** L.shape[1] < 2**62:
        keys = np.zeros(len(L), dtype=np.int64)
        column = np.empty(len(L), dtype=np.int64)
        for j in range(L.shape[1]):  # column by column: an int64 copy of all of L is 8 bytes per vote slot
            np.add(L[:, j], 1, out=column, dtype=np.int64)
            column *= base**j
            keys += column
        del column
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(L, axis=0, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def by_pattern(predict: Callable[[np.ndarray], np.ndarray], L: np.ndarray) -> np.ndarray:
    """``predict(L)``, computed on the distinct vote patterns of L only."""
    first, inverse = vote_patterns(L)
    return predict(L[first])[inverse]


def fit_sample(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """The rows (sorted) the label model is fitted on when there are more than ``limit``; None: all."""
    if limit is None or n <= limit:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def fit_candidate(L_fit: np.ndarray, *, cardinality: int, params: dict[str, Any], class_balance: list[float] | None,
         seed: int, plugin: Any = None) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray | None]:
    """A fitted model's predict_proba and its learned LF accuracies (None for majority vote)."""
    model = build_label_model(params, cardinality=cardinality, seed=seed, plugin=plugin).fit(L_fit, class_balance)
    return model.predict_proba, model.learned_accuracy_


def _configured(config: DenoiseConfig) -> dict[str, Any]:
    """The parameters of the configured model (``model`` and its own settings; your own model's token and params)."""
    if config.plugin is not None:
        return {"model": object_token(config.model), "params": dict(config.params)}
    if config.model in ("dawid_skene", "one_coin"):
        return _dawid_skene(config, config.model)
    if config.model == "label_model":
        return {"model": "label_model", "n_epochs": config.n_epochs, "lr": config.lr, "l2": config.l2}
    return {"model": config.model}


def _dawid_skene(config: DenoiseConfig, model: str = "dawid_skene") -> dict[str, Any]:
    return {"model": model, "n_iter": config.ds_iterations}


@dataclass
class Denoiser:
    """A fitted label model: ``predict_proba(L)`` for any batch of items (computed per vote pattern),
    and what was chosen. Fitting once and predicting batch by batch keeps memory bounded."""

    predict: Callable[[np.ndarray], np.ndarray]
    n_lfs: int
    params: dict[str, Any]
    learned_accuracy: np.ndarray | None = None
    selection: list[dict[str, Any]] = field(default_factory=list)

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        if L.ndim != 2 or L.shape[1] != self.n_lfs:
            raise ValueError(f"L must have {self.n_lfs} LF columns, as the label model was fitted on; got shape {L.shape}.")
        return by_pattern(self.predict, L)


def fit_denoiser(
    L_fit: np.ndarray, *, cardinality: int, config: DenoiseConfig,
    dev: tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    n_items: int | None = None,
) -> Denoiser:
    """Fit on ``L_fit`` (``n_items``: how many items the model will label, when ``L_fit`` is a sample).

    ``dev`` is ``(L_dev, y_dev)`` or ``(L_dev, y_dev, tie_hash_dev)``: with it every candidate is scored
    on the gold dev labels (ties broken by the hashes, see :func:`hard_labels`; by position without them)
    and the best is kept (the configured settings first, so ties keep them).
    """
    plugin = config.plugin
    if config.model == "auto" and dev is None:
        def fit(L: np.ndarray, params: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
            return fit_candidate(L, cardinality=cardinality, params=params, class_balance=config.class_balance, seed=config.seed)[0]

        params, selection = choose_model(L_fit, config=config, candidates=auto_candidates(config), fit=fit)
        predict, learned = fit_candidate(L_fit, cardinality=cardinality, params=params,
                                class_balance=config.class_balance, seed=config.seed)
        return Denoiser(predict, L_fit.shape[1], params, learned, selection)
    candidates = selection_candidates(config, L_fit.shape[1], gold=dev is not None)
    if dev is None:
        predict, learned = fit_candidate(L_fit, cardinality=cardinality, params=candidates[0],
                                class_balance=config.class_balance, seed=config.seed, plugin=plugin)
        return Denoiser(predict, L_fit.shape[1], candidates[0], learned)
    fitted = [(params, *fit_candidate(L_fit, cardinality=cardinality, params=params, class_balance=config.class_balance,
                             seed=config.seed, plugin=plugin)) for params in candidates]
    best, selection = choose_on_gold([predict for _, predict, _ in fitted], candidates, dev, config.metric,
                                     population=L_fit if config.model == "auto" else None,
                                     population_size=n_items, seed=config.seed)
    params, predict, learned = fitted[best]
    return Denoiser(predict, L_fit.shape[1], params, learned, selection)


def auto_candidates(config: DenoiseConfig) -> list[dict[str, Any]]:
    """What ``model: auto`` chooses among: every registered label model, with the configured settings."""
    return [_configured(config.model_copy(update={"model": name})) for name in LABEL_MODELS]


def selection_candidates(config: DenoiseConfig, n_lfs: int, *, gold: bool) -> list[dict[str, Any]]:
    """The label models scored on gold labels (a ``select_on`` split or a person's answers): with
    ``model: auto`` the registered models (:func:`auto_candidates`, the ones the review page's
    disagreement queue compares), else the configured one first and ``grid``; without gold, the
    configured one alone. Fewer than 3 LFs: majority vote."""
    candidates = auto_candidates(config) if config.model == "auto" and gold else [_configured(config)]
    if gold and config.model != "auto":
        grid = config.grid
        for n_epochs, lr, l2 in itertools.product(grid.n_epochs, grid.lr, grid.l2):
            candidates.append({"model": "label_model", "n_epochs": n_epochs, "lr": lr, "l2": l2})
        if grid.include_majority:
            candidates.append({"model": "majority"})
        if grid.include_dawid_skene:
            candidates += [_dawid_skene(config), _dawid_skene(config, "one_coin")]
        candidates = [c for i, c in enumerate(candidates) if c not in candidates[:i]]
    if n_lfs < 3:
        candidates = [c for c in candidates if c["model"] == "majority"] or candidates
    return candidates


def choose_on_gold(
    predicts: list[Callable[[np.ndarray], np.ndarray]], candidates: list[dict[str, Any]],
    dev: tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray], metric: str, *,
    population: np.ndarray | None = None, population_size: int | None = None, seed: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """The index of the fitted candidate that scores best on the gold ``dev`` labels by ``metric`` (the
    first of equals: the configured settings win ties), and every candidate's score.

    With ``population`` (the votes the candidates were fitted on, a sample of ``population_size`` items
    when given) and ``metric: accuracy``, each gold item counts for its stratum
    (:func:`disagreement_strata`): the stratum's items nobody answered, over its answered items. This
    post-stratification aims the estimate at the items the chosen model will label (answered items keep
    their answers) and keeps it fair for answers from any strategy or source (flagged items, another
    tool's), whose kinds of disagreement are not a random sample."""
    L_dev, y_dev = dev[0], dev[1]
    tie_hash = dev[2] if len(dev) == 3 else np.arange(len(L_dev))
    predicted = np.stack([hard_labels(by_pattern(predict, L_dev), tie_hash)[0] for predict in predicts])
    voted = (np.asarray(L_dev) != ABSTAIN).any(axis=1)
    if population is not None and metric == "accuracy" and voted.any():
        # A label model decides only items some LF voted on: answers on the others judge none of them.
        predicted, y_dev = predicted[:, voted], y_dev[voted]
        scale = (population_size or len(population)) / max(len(population), 1)
        weight = stratum_weights(predicted, _population_labels(predicts, population[(population != ABSTAIN).any(axis=1)],
                                                               seed), scale)
        scores = [float(weight @ (p == y_dev)) for p in predicted]
    else:
        scores = [score(y_dev, p, metric) for p in predicted]
    return int(np.argmax(scores)), [{**params, f"dev_{metric}": s} for params, s in zip(candidates, scores)]


def _population_labels(predicts: list[Callable[[np.ndarray], np.ndarray]], L: np.ndarray, seed: int) -> np.ndarray:
    """Each candidate's class for every row of ``L``, ties broken at random (seeded): strata sizes only."""
    tie_hash = np.random.default_rng(seed).integers(0, 2**63, size=len(L), dtype=np.uint64)
    return np.stack([hard_labels(by_pattern(predict, L), tie_hash)[0] for predict in predicts])


def disagreement_strata(labels: np.ndarray) -> np.ndarray:
    """Each item's kind of disagreement (``labels``: candidates x items): which candidates give the same
    class as which, whatever the classes; 0 where all agree. Items of one stratum tell the same candidates
    apart, so a stratum's answers speak for all of its items."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be candidates x items; got shape {labels.shape}.")
    n = len(labels)
    key = np.zeros(labels.shape[1], dtype=np.int64)
    for j in range(1, n):
        first = np.full(labels.shape[1], j, dtype=np.int64)  # the first candidate with j's class
        for i in range(j - 1, -1, -1):
            first[labels[i] == labels[j]] = i
        key += first * (n ** j)
    return key


def stratum_weights(dev_labels: np.ndarray, population_labels: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Per gold item, the items of its stratum nobody answered (the population's count times ``scale``,
    less the gold items in it) over the gold items in it, normalised to sum to one; uniform where every
    stratum is answered through (the candidates then label the rest alike)."""
    dev_strata, population_strata = disagreement_strata(dev_labels), disagreement_strata(population_labels)
    strata, inverse, answered = np.unique(dev_strata, return_inverse=True, return_counts=True)
    remaining = np.array([max((population_strata == s).sum() * scale - a, 0.0) for s, a in zip(strata, answered)])
    weight = (remaining / answered)[inverse]
    if weight.sum() <= 0:
        return np.full(len(dev_strata), 1.0 / len(dev_strata))
    return weight / weight.sum()


def denoise(
    L_fit: np.ndarray, L: np.ndarray, *, cardinality: int, config: DenoiseConfig,
    dev: tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Denoised:
    """Fit on ``L_fit`` (see :func:`fit_denoiser`) and return probabilities for ``L``."""
    if L_fit.shape[1] != L.shape[1]:
        raise ValueError(f"L_fit has {L_fit.shape[1]} LFs but L has {L.shape[1]}; they must match.")
    model = fit_denoiser(L_fit, cardinality=cardinality, config=config, dev=dev)
    return Denoised(model.predict_proba(L), model.params, model.learned_accuracy, model.selection)


def majority_proba(L: np.ndarray, *, cardinality: int) -> np.ndarray:
    """Snorkel's MajorityLabelVoter probabilities (ties share mass; no vote gives uniform)."""
    return by_pattern(MajorityVote(cardinality).fit(L).predict_proba, L)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of class probabilities."""
    safe = np.clip(probs, 1e-12, 1.0)
    return -(probs * np.log(safe)).sum(axis=1)
