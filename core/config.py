"""Base class of every stage's typed configuration, with a stable fingerprint."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict


class StageConfig(BaseModel):
    """A frozen, strictly validated stage configuration.

    ``fingerprint()`` is a short hash of the canonical JSON form: two configs with the same
    fingerprint make a stage compute the same thing, so it keys runs and caches.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def fingerprint(self) -> str:
        """Return a 16-hex-digit hash of this configuration's canonical JSON."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
