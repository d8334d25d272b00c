"""Base class of every stage's typed configuration, with a stable fingerprint."""

from __future__ import annotations

import hashlib
import json

from typing import Any

from pydantic import BaseModel, ConfigDict

WHERE_IT_RUNS = frozenset({"device"})  # fields left out of fingerprints, at any depth


def _without_runtime(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_runtime(v) for k, v in value.items() if k not in WHERE_IT_RUNS}
    if isinstance(value, list):
        return [_without_runtime(v) for v in value]
    return value


class StageConfig(BaseModel):
    """A frozen, strictly validated stage configuration.

    ``fingerprint()`` is a short hash of the canonical JSON form: two configs with the same
    fingerprint make a stage compute the same thing, so it keys runs and caches. Where it runs
    (``device``) is left out: a GPU run computes what a CPU run does, up to float rounding.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def fingerprint(self) -> str:
        """Return a 16-hex-digit hash of this configuration's canonical JSON."""
        canonical = json.dumps(_without_runtime(self.model_dump(mode="json")), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
