"""``model: auto``: choose majority vote, Snorkel's LabelModel or Dawid-Skene from the votes alone.

The criterion is held-out vote agreement: on items with at least two votes, one vote each is hidden,
every candidate is fitted on the rest, and it is scored by how often its label for the item (ties
shared among the tied classes) equals the hidden vote. When the LFs are better than chance and
independent given the true class, that agreement rises with the candidate's accuracy, so it ranks the
candidates as accuracy would without a gold label. Rules are often not independent: several fire on
the same words. So with a one-class LF's vote, the votes of its overlapping one-class LFs (those
that fire on more than half of its items) are hidden too, and a candidate is scored on predicting a
rule from evidence other than its near-duplicates; otherwise a model that follows the correlated
cluster scores best. Dawid-Skene is left out when most votes come from LFs that vote a single class:
it models votes, not abstains, so such LFs carry nothing in it and it returns the class prior.

A lead is trusted only when it is larger than its sampling noise: a candidate whose agreement is
within ``Z`` standard errors of the best's (of the paired per-vote differences) is tied with it, and
ties go to a stated rule (:data:`FALLBACK_RULE`). On small crowds (a quiz of 20 questions) that is
the usual case, and the rule then prefers the model with the fewest parameters that still weighs
workers (one-coin Dawid-Skene), measured as the safest choice in benchmarks/label_models.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from thresher.labeling.label_models import LABEL_MODELS
from thresher.labeling.lf.base import ABSTAIN
from thresher.labeling.ties import shared_ties

if TYPE_CHECKING:
    from thresher.labeling.config import DenoiseConfig

MASKS = 3  # hidden-vote draws averaged per candidate
OVERLAP = 0.5  # a one-class LF's partner fires on more than this share of its items
Z = 2.0  # a lead of fewer standard errors than this is not a lead: the fallback rule chooses among the tied


def overlapping_lfs(L: np.ndarray) -> list[np.ndarray]:
    """For each LF, the other LFs hidden with its vote: when it votes one class, the one-class LFs
    that fire on more than ``OVERLAP`` of the items it fires on (any class); none otherwise. LFs that
    vote several classes (annotators) are never partners: they share items by the task's design."""
    voted = L != ABSTAIN
    one_class = np.array([len(np.unique(L[voted[:, j], j])) == 1 for j in range(L.shape[1])], dtype=bool)
    partners = [np.empty(0, dtype=np.int64) for _ in range(L.shape[1])]
    rules = np.flatnonzero(one_class)
    if len(rules) < 2:
        return partners
    fires = sparse.csc_matrix(voted[:, rules].astype(np.float32))
    both = (fires.T @ fires).toarray()
    share = both / np.maximum(np.diag(both)[:, None], 1.0)  # share[a, b]: P(rule b fires | rule a fires)
    np.fill_diagonal(share, 0.0)
    for a, j in enumerate(rules):
        partners[j] = rules[share[a] > OVERLAP]
    return partners


def heldout_agreement(L: np.ndarray, fit: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator,
                      partners: list[np.ndarray] | None = None) -> np.ndarray:
    """Hide one random vote of every item with two or more (and, on that item, the votes of the hidden
    LF's ``partners``); fit on the rest (``fit(L) -> probs``) and return, per such item, the agreement
    of the predicted label with the hidden vote (a tie's share when the hidden vote is among the tied)."""
    voted = L != ABSTAIN
    items = np.nonzero(voted.sum(axis=1) >= 2)[0]
    if len(items) == 0:
        raise ValueError("No item has two or more votes: held-out agreement cannot be measured.")
    # a random voter of each item: the voter whose uniform key is largest among the item's voters
    keys = np.where(voted[items], rng.random((len(items), L.shape[1])), -1.0)
    lfs = keys.argmax(axis=1)
    hidden = L[items, lfs].astype(np.int64)
    masked = L.copy()
    masked[items, lfs] = ABSTAIN
    for j, others in enumerate(partners or []):
        if len(others):
            masked[np.ix_(items[lfs == j], others)] = ABSTAIN
    probs = shared_ties(fit(masked)[items])
    return probs[np.arange(len(items)), hidden]


def multi_class_vote_share(L: np.ndarray) -> float:
    """The share of votes cast by LFs that vote more than one class."""
    votes = 0
    multi = 0
    for j in range(L.shape[1]):
        column = L[:, j][L[:, j] != ABSTAIN]
        votes += len(column)
        if len(np.unique(column)) > 1:
            multi += len(column)
    return multi / votes if votes else 0.0


Fit = Callable[[np.ndarray, dict[str, Any]], Callable[[np.ndarray], np.ndarray]]


def choose_model(
    L_fit: np.ndarray, *, config: DenoiseConfig, candidates: list[dict[str, Any]], fit: Fit,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The candidate with the highest held-out agreement on (a sample of) ``L_fit`` when it leads the
    others by ``Z`` standard errors, else the fallback rule's among those it does not; and every
    candidate's score or the reason it was left out. The chosen one is marked ``chosen``.
    ``fit(L, params)`` fits one candidate and returns its predict_proba."""
    rng = np.random.default_rng(config.seed)
    L = L_fit
    if len(L) > config.auto_rows:
        L = L[np.sort(rng.choice(len(L), size=config.auto_rows, replace=False))]
    share = multi_class_vote_share(L)
    partners = overlapping_lfs(L)
    selection: list[dict[str, Any]] = []
    agreements: dict[int, np.ndarray] = {}
    for params in candidates:
        reason = None
        kind = LABEL_MODELS[params["model"]]
        if L.shape[1] < kind.min_lfs:
            reason = f"{kind.title} needs at least {kind.min_lfs} LFs; there are {L.shape[1]}"
        elif kind.needs_multi_class_lfs and share < 0.5:
            reason = (f"{share:.0%} of the votes come from LFs that vote more than one class; {kind.title} models "
                      "votes, not abstains, so on one-class LFs it returns the class prior")
        if reason is not None:
            selection.append({**params, "excluded": reason})
            continue

        def fit_predict(masked: np.ndarray, params: dict[str, Any] = params) -> np.ndarray:
            return fit(masked, params)(masked)

        try:
            scores = np.concatenate([
                heldout_agreement(L, fit_predict, np.random.default_rng(config.seed + draw), partners)
                for draw in range(MASKS)])
        except ValueError as exc:  # too few votes to hide one, or a model that cannot be fitted on them
            selection.append({**params, "excluded": str(exc)})
            continue
        agreements[len(selection)] = scores
        selection.append({**params, "heldout_agreement": float(scores.mean())})
    scored = [entry for entry in selection if "heldout_agreement" in entry]
    if not scored:
        chosen = {"model": "majority"}
        selection.append({**chosen, "chosen": True, "excluded": "no candidate could be scored; majority vote kept"})
        return chosen, selection
    lead = max(agreements, key=lambda i: agreements[i].mean())
    top = float(agreements[lead].mean())
    tied = []
    for i, scores in agreements.items():
        gap = agreements[lead] - scores
        se = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0
        if i != lead:
            selection[i]["standard_errors_behind"] = round(float(gap.mean()) / se, 2) if se > 0 else 0.0
        if gap.mean() <= Z * se:
            tied.append(selection[i])
    if len(tied) == 1 and top > 0:
        best = tied[0]
    else:
        best = fallback(tied if top > 0 else scored, share)
        what = (f"{len(tied)} candidates are within {Z:g} standard errors of the best agreement ({top:.4f}): "
                "the votes cannot rank them" if top > 0
                else "every candidate's agreement is 0 (no LF's vote can be predicted from the others)")
        best["note"] = (f"auto cannot tell the candidates apart: {what}; chose {best['model']} by the fallback rule: "
                        f"{FALLBACK_RULE}")
    best["chosen"] = True
    return {k: v for k, v in best.items() if k not in ("heldout_agreement", "standard_errors_behind", "chosen", "note")}, selection


FALLBACK_RULE = ("when most votes come from LFs that vote several classes (annotators), one-coin Dawid-Skene, "
                 "else Dawid-Skene, among the tied; else majority vote")


def fallback(entries: list[dict[str, Any]], multi_class_share: float) -> dict[str, Any]:
    """The entry :data:`FALLBACK_RULE` prefers among ``entries`` (the first of them if it prefers none).
    For annotators, the model with the fewest parameters that still weighs them: one-coin Dawid-Skene
    was within 2 points of the best model on 8 of the 9 shared crowd sets, and never below majority
    vote. Majority vote is the fallback for rules: on the shared rule sets where the criterion tied,
    it was the better label (benchmarks/label_models.py)."""
    order = (["one_coin", "dawid_skene"] if multi_class_share >= 0.5 else []) + ["majority"]
    for model in order:
        for entry in entries:
            if entry["model"] == model:
                return entry
    return entries[0]
