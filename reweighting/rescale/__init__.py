"""Per-sample loss weights learned during training: STORM and loss-based rules."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "Reweighter": "thresher.reweighting.rescale.trainer",
    "Strategy": "thresher.reweighting.rescale.base",
    "STRATEGIES": "thresher.reweighting.rescale.base",
    "LossRule": "thresher.reweighting.rescale.loss_rules",
    "loss_rule_weights": "thresher.reweighting.rescale.loss_rules",
    "shape_losses": "thresher.reweighting.rescale.loss_rules",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
