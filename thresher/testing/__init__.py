"""Helpers for testing thresher and code that uses it: contract checks for your own detector or label
model (:mod:`thresher.testing.contracts`), and a misbehaving OpenAI-compatible server
(:mod:`thresher.testing.openai_server`)."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "check_detector": "thresher.testing.contracts",
    "check_label_model": "thresher.testing.contracts",
    "ContractError": "thresher.testing.contracts",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
