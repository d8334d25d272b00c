"""Every noise detector by name, with its settings: what ``detect.detectors`` in the config may list.

A detector's settings are a small config (nested under its name in the YAML) whose ``build`` makes
the detector (imported only then, so reading a config stays light); the settings class carries the
detector's ``name`` and capabilities (``streams``) as class attributes, and ``DETECTORS`` is built
from the classes. Adding a detector: its class in its own module (the
:class:`~thresher.reweighting.detect.base.Detector` protocol) and its settings class here, listed in
``DETECTORS``; the contract test then checks it. A user's own detector (or scikit-learn classifier)
is a :class:`PluginSettings` entry under a name of the user's choosing.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from thresher.core.config import StageConfig
from thresher.core.plugins import PluginRef, fresh
from thresher.reweighting.detect.base import FilterBy

if TYPE_CHECKING:
    from thresher.reweighting.detect.base import Detector


@dataclass(frozen=True)
class Shared:
    """What the detect stage gives every detector: the classifier of its out-of-fold probabilities."""

    estimator: Any  # an unfitted scikit-learn classifier
    n_folds: int = 5
    random_state: int | None = 0


class DetectorSettings(StageConfig):
    """A detector's settings, and what the detect stage needs to know of it: its registered ``name``,
    whether it ``streams`` (needs only the out-of-fold probabilities, so it runs on the streamed path
    where no item's features are kept), whether it votes over the ``other`` detectors (the ensemble)."""

    name: ClassVar[str]
    streams: ClassVar[bool] = False
    over_others: ClassVar[bool] = False

    @abstractmethod
    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        """The detector these settings make, given what every detector shares (and the ensemble's members)."""


class ConfidentLearningSettings(DetectorSettings):
    """cleanlab's ``find_label_issues``: ``filter_by`` picks its rule."""

    name = "confident_learning"
    streams = True

    filter_by: FilterBy = "prune_by_noise_rate"  # cleanlab find_label_issues' rule

    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        from thresher.reweighting.detect.confident_learning import ConfidentLearning

        return ConfidentLearning(estimator=shared.estimator, n_folds=shared.n_folds, filter_by=self.filter_by,
                                 random_state=shared.random_state)


class SmallLossSettings(DetectorSettings):
    """Large out-of-fold loss. ``gmm``: flag p_clean below ``threshold`` (DivideMix 0.5; PLS/LSA use 0.05);
    ``fraction``: flag cleanlab's estimated noise rate (Co-teaching)."""

    name = "small_loss"
    streams = True

    # gmm (2-component GMM on min-max loss) | fraction (Co-teaching: the estimated noise rate)
    rule: Literal["gmm", "fraction"] = "gmm"
    threshold: float = Field(0.5, gt=0, lt=1)  # gmm: flag p_clean below this (DivideMix 0.5; PLS/LSA use 0.05)

    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        from thresher.reweighting.detect.small_loss import SmallLoss

        return SmallLoss(estimator=shared.estimator, n_folds=shared.n_folds, rule=self.rule, threshold=self.threshold,
                         random_state=shared.random_state)


class LinearSeparationSettings(DetectorSettings):
    """The hyperplane that separates the small-loss flags (made with ``small_loss_*``); ``mode: per_class``
    fits one per label, cross-fitted (see the README)."""

    name = "linear_separation"

    # global (the paper) | per_class (one hyperplane per label, cross-fitted)
    mode: Literal["global", "per_class"] = "global"
    small_loss_rule: Literal["gmm", "fraction"] = "gmm"  # the rule of the small-loss flags it separates
    small_loss_threshold: float = Field(0.5, gt=0, lt=1)  # their gmm threshold

    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        from thresher.reweighting.detect.linear_separation import LinearSeparation

        return LinearSeparation(mode=self.mode, n_folds=shared.n_folds, small_loss_rule=self.small_loss_rule,
                                small_loss_threshold=self.small_loss_threshold, random_state=shared.random_state)


class HybridSettings(DetectorSettings):
    """Alternate linear separation and small-loss (at ``threshold``) for ``rounds``, re-fitting on kept items."""

    name = "hybrid"

    rounds: int = Field(4, ge=1, le=20)  # linear separation / small-loss rounds
    threshold: float = Field(0.5, gt=0, lt=1)  # small-loss p_clean threshold
    lsa_mode: Literal["global", "per_class"] = "global"  # global (the paper) | per_class

    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        from thresher.reweighting.detect.hybrid import Hybrid

        return Hybrid(estimator=shared.estimator, n_folds=shared.n_folds, rounds=self.rounds,
                      threshold=self.threshold, lsa_mode=self.lsa_mode, random_state=shared.random_state)


class EnsembleSettings(DetectorSettings):
    """Flag what at least ``min_votes`` of the other listed detectors flag."""

    name = "ensemble"
    streams = True  # as its members do
    over_others = True

    min_votes: int = Field(2, ge=1)  # flag what at least this many of the other detectors flag

    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        from thresher.reweighting.detect.ensemble import Ensemble

        return Ensemble(members=members, min_votes=self.min_votes)


class PluginSettings(DetectorSettings):
    """Your own detector, under a name of your choosing: ``object`` is an object meeting the detector
    contract (``fit(X, labels, *, pred_probs=None)`` returning itself, ``result()`` returning a
    :class:`~thresher.reweighting.detect.base.DetectorResult`; check it with
    ``thresher.testing.check_detector``), or a scikit-learn classifier, which makes cleanlab's confident
    learning on that classifier's own out-of-fold probabilities. Given as ``module:attribute`` or
    ``file.py:attribute`` (a class or function is called with ``params``), or as the object itself
    from Python."""

    name = "plugin"
    object: PluginRef  # 'module:attribute' or 'file.py:attribute': a detector, or a scikit-learn classifier
    params: dict[str, Any] = Field(default_factory=dict)  # the arguments a class or function is called with

    def build(self, shared: Shared, members: list[Detector] | None = None) -> Detector:
        made = fresh(self.object, what="detector", params=self.params, required=("fit",))
        if callable(getattr(made, "result", None)):
            return made
        if not callable(getattr(made, "predict_proba", None)):
            raise TypeError(f"The detector {self.object!r} is neither a detector (fit and result) nor a "
                            f"scikit-learn classifier (fit and predict_proba); got {type(made).__name__}.")
        from thresher.reweighting.detect.confident_learning import ConfidentLearning

        return OwnProbabilities(ConfidentLearning(estimator=made, n_folds=shared.n_folds,
                                                  random_state=shared.random_state))


class OwnProbabilities:
    """A detector that computes its own out-of-fold probabilities (a plug-in classifier's), ignoring the shared ones."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def fit(self, X: Any, labels: Any, *, pred_probs: Any = None) -> "OwnProbabilities":
        self.detector.fit(X, labels)
        return self

    def result(self) -> Any:
        return self.detector.result()


DETECTORS: dict[str, type[DetectorSettings]] = {cls.name: cls for cls in (
    ConfidentLearningSettings, SmallLossSettings, LinearSeparationSettings, HybridSettings,
    EnsembleSettings,  # over the others: listed last, needs two more
)}


def detector_settings(name: str, value: Any, *, context: Any = None) -> DetectorSettings:
    """The settings of detector ``name`` from the config: a registered name's, or a plug-in's (a mapping
    with ``object``, or from Python the object itself)."""
    if isinstance(value, DetectorSettings):
        return value
    if name in DETECTORS:
        return DETECTORS[name].model_validate(value or {}, context=context)
    if isinstance(value, dict) and "object" in value:
        return PluginSettings.model_validate(value, context=context)  # its file relative to the config's
    if value is not None and not isinstance(value, (dict, str, list)):
        return PluginSettings(object=value)
    raise ValueError(f"Unknown detector {name!r}: the detectors are {', '.join(DETECTORS)}; your own one is a "
                     f"mapping with 'object: module:attribute' (a detector or a scikit-learn classifier).")


def build_detectors(settings: dict[str, DetectorSettings], shared: Shared) -> dict[str, Detector]:
    """The configured detectors by name, in order; the ensemble gets the others as members."""
    built: dict[str, Detector] = {name: config.build(shared) for name, config in settings.items()
                                  if not config.over_others}
    for name, config in settings.items():
        if config.over_others:
            built[name] = config.build(shared, members=list(built.values()))
    return built
