"""Every noise detector by name, with its settings: what ``detect.detectors`` in the config may list.

A detector's settings are a small config (nested under its name in the YAML) whose ``build`` makes
the detector (imported only then, so reading a config stays light). Adding a detector: its class in
its own module (the :class:`~thresher.reweighting.detect.base.Detector` protocol), its settings here,
and one line in ``DETECTORS``; the contract test then checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from thresher.core.config import StageConfig
from thresher.reweighting.detect.base import FilterBy

if TYPE_CHECKING:
    from thresher.reweighting.detect.base import Detector


@dataclass(frozen=True)
class Shared:
    """What the detect stage gives every detector: the classifier of its out-of-fold probabilities."""

    estimator: Any  # an unfitted scikit-learn classifier
    n_folds: int = 5
    random_state: int | None = 0


class ConfidentLearningSettings(StageConfig):
    """cleanlab's ``find_label_issues``: ``filter_by`` picks its rule."""

    filter_by: FilterBy = "prune_by_noise_rate"

    def build(self, shared: Shared) -> Detector:
        from thresher.reweighting.detect.confident_learning import ConfidentLearning

        return ConfidentLearning(estimator=shared.estimator, n_folds=shared.n_folds, filter_by=self.filter_by,
                                 random_state=shared.random_state)


class SmallLossSettings(StageConfig):
    """Large out-of-fold loss. ``gmm``: flag p_clean below ``threshold`` (DivideMix 0.5; PLS/LSA use 0.05);
    ``fraction``: flag cleanlab's estimated noise rate (Co-teaching)."""

    rule: Literal["gmm", "fraction"] = "gmm"
    threshold: float = Field(0.5, gt=0, lt=1)

    def build(self, shared: Shared) -> Detector:
        from thresher.reweighting.detect.small_loss import SmallLoss

        return SmallLoss(estimator=shared.estimator, n_folds=shared.n_folds, rule=self.rule, threshold=self.threshold,
                         random_state=shared.random_state)


class LinearSeparationSettings(StageConfig):
    """The hyperplane that separates the small-loss flags (made with ``small_loss_*``); ``mode: per_class``
    fits one per label, cross-fitted (see the README)."""

    mode: Literal["global", "per_class"] = "global"
    small_loss_rule: Literal["gmm", "fraction"] = "gmm"
    small_loss_threshold: float = Field(0.5, gt=0, lt=1)

    def build(self, shared: Shared) -> Detector:
        from thresher.reweighting.detect.linear_separation import LinearSeparation

        return LinearSeparation(mode=self.mode, n_folds=shared.n_folds, small_loss_rule=self.small_loss_rule,
                                small_loss_threshold=self.small_loss_threshold, random_state=shared.random_state)


class HybridSettings(StageConfig):
    """Alternate linear separation and small-loss (at ``threshold``) for ``rounds``, re-fitting on kept items."""

    rounds: int = Field(4, ge=1, le=20)
    threshold: float = Field(0.5, gt=0, lt=1)
    lsa_mode: Literal["global", "per_class"] = "global"

    def build(self, shared: Shared) -> Detector:
        from thresher.reweighting.detect.hybrid import Hybrid

        return Hybrid(estimator=shared.estimator, n_folds=shared.n_folds, rounds=self.rounds,
                      threshold=self.threshold, lsa_mode=self.lsa_mode, random_state=shared.random_state)


class EnsembleSettings(StageConfig):
    """Flag what at least ``min_votes`` of the other listed detectors flag."""

    min_votes: int = Field(2, ge=1)

    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        from thresher.reweighting.detect.ensemble import Ensemble

        return Ensemble(members=members, min_votes=self.min_votes)


DETECTORS: dict[str, type[StageConfig]] = {
    "confident_learning": ConfidentLearningSettings,
    "small_loss": SmallLossSettings,
    "linear_separation": LinearSeparationSettings,
    "hybrid": HybridSettings,
    "ensemble": EnsembleSettings,  # over the others: listed last, needs two more
}
DetectorName = Literal["confident_learning", "small_loss", "linear_separation", "hybrid", "ensemble"]


def build_detectors(settings: dict[str, Any], shared: Shared) -> dict[str, Detector]:
    """The configured detectors by name, in order; the ensemble gets the others as members."""
    built: dict[str, Detector] = {}
    for name, config in settings.items():
        if name == "ensemble":
            continue
        built[name] = config.build(shared)
    if "ensemble" in settings:
        built["ensemble"] = settings["ensemble"].build(shared, members=list(built.values()))
    return built
