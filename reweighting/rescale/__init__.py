"""Per-sample loss weights learned during training: STORM and loss-based rules."""

from reweighting.rescale.loss_rules import LossRule, loss_rule_weights, shape_losses
from reweighting.rescale.trainer import STRATEGIES, Reweighter, Strategy

__all__ = ["Reweighter", "Strategy", "STRATEGIES", "LossRule", "loss_rule_weights", "shape_losses"]
