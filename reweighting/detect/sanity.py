"""Sanity checks on a detector's flags, without gold: verdicts that are about a class or about a
classifier that learned nothing are not item-level label issues, and are said to be so.

Three signs, each measured on the checked items:

- **a whole class flagged**: the flags cover most of one class's items (a hybrid's fallback round, or a
  classifier that cannot tell the class from another);
- **far more flags than noise**: the flag rate is well above the noise rate that cleanlab estimates from
  the same out-of-fold probabilities (the off-diagonal mass of its calibrated confident joint);
- **a classifier at chance**: the out-of-fold probabilities do not rank the given labels above the others
  (macro one-vs-rest AUROC near or below 0.5), so disagreeing with them says nothing about an item.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CLASS_SHARE = 0.8  # flags on more than this share of a class's items are a class-level verdict
MIN_CLASS_ITEMS = 20  # ... for a class with at least this many checked items
NOISE_RATIO = 2.0  # flag rate above this multiple of the estimated noise rate (and ...)
NOISE_MARGIN = 0.1  # ... more than this above it
CHANCE_AUROC = 0.55  # out-of-fold probabilities ranking the given labels no better than this


def flag_warnings(labels: np.ndarray, is_issue: np.ndarray, pred_probs: np.ndarray,
                  names: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Warnings about the flags ``is_issue`` of items labelled ``labels`` (0..K-1, the checked classes,
    named by ``names``) given their out-of-fold ``pred_probs``; and the measured numbers."""
    from cleanlab.count import estimate_joint
    from sklearn.metrics import roc_auc_score

    labels, is_issue = np.asarray(labels), np.asarray(is_issue, dtype=bool)
    if labels.shape != is_issue.shape or pred_probs.shape[0] != labels.shape[0]:
        raise ValueError(f"labels {labels.shape}, is_issue {is_issue.shape} and pred_probs {pred_probs.shape} "
                         "must have one row per item.")
    warnings: list[str] = []
    flag_rate = float(is_issue.mean()) if len(labels) else 0.0
    shares = {}
    for k, name in enumerate(names):
        members = labels == k
        if members.sum() >= MIN_CLASS_ITEMS:
            shares[name] = float(is_issue[members].mean())
            if shares[name] > CLASS_SHARE:
                warnings.append(f"flags {int(is_issue[members].sum())} of the {int(members.sum())} items labelled "
                                f"{name} ({shares[name]:.0%}): a verdict on the class, not on items")
    K = pred_probs.shape[1]
    noise = float("nan")
    if len(np.unique(labels)) == K and K >= 2:
        joint = estimate_joint(labels, pred_probs)
        noise = float(1.0 - np.trace(joint))
        if flag_rate > NOISE_RATIO * noise and flag_rate > noise + NOISE_MARGIN:
            warnings.append(f"flags {flag_rate:.0%} of the items where the same probabilities estimate {noise:.0%} "
                            "label noise")
    auroc = float("nan")
    if len(np.unique(labels)) >= 2:
        present = np.unique(labels)
        scores = pred_probs[:, present] / np.clip(pred_probs[:, present].sum(axis=1, keepdims=True), 1e-12, None)
        auroc = float(roc_auc_score(labels, scores[:, 1] if len(present) == 2 else scores,
                                    multi_class="ovr", average="macro", labels=present if len(present) > 2 else None))
        if auroc <= CHANCE_AUROC:
            warnings.append(f"the out-of-fold classifier ranks the given labels at chance (macro AUROC {auroc:.3f}): "
                            "its disagreement says nothing about an item")
    return warnings, {"flag_rate": round(flag_rate, 4), "estimated_noise": round(noise, 4),
                      "class_flag_share": {k: round(v, 4) for k, v in shares.items()}, "oof_auroc": round(auroc, 4)}
