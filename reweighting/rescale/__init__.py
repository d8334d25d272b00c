"""Per-sample loss weights learned during training: STORM and loss-based rules."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "Reweighter": "reweighting.rescale.trainer",
    "Strategy": "reweighting.rescale.base",
    "STRATEGIES": "reweighting.rescale.base",
    "LossRule": "reweighting.rescale.loss_rules",
    "loss_rule_weights": "reweighting.rescale.loss_rules",
    "shape_losses": "reweighting.rescale.loss_rules",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
