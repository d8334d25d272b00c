"""Base class of every stage's typed configuration, with a stable fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

WHERE_IT_RUNS = frozenset({"device"})  # fields left out of fingerprints, at any depth


def _without_runtime(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_runtime(v) for k, v in value.items() if k not in WHERE_IT_RUNS}
    if isinstance(value, list):
        return [_without_runtime(v) for v in value]
    return value


def _base_dir(info: ValidationInfo) -> Path | None:
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    return None if base is None else Path(base)


def resolve_path(value: str, info: ValidationInfo) -> str:
    """A relative path made relative to the config file's folder (the validation context's ``base_dir``)."""
    base = _base_dir(info)
    path = Path(value).expanduser()
    return str(path if base is None or path.is_absolute() else base / path)


def resolve_object_spec(value: Any, info: ValidationInfo) -> Any:
    """A ``file.py:attribute`` spec with its file relative to the config file; anything else unchanged."""
    if isinstance(value, str):
        target, sep, attr = value.rpartition(":")
        if sep and target.endswith(".py"):
            return f"{resolve_path(target, info)}:{attr}"
    return value


# A file path in a config: relative paths are relative to the config file's folder. Every field of this
# type is resolved so (validated with ``context={"base_dir": folder}``; see pipeline/config.py).
ConfigPath = Annotated[str, AfterValidator(resolve_path)]
# 'module:attribute' or 'file.py:attribute' (its file relative to the config file's folder).
ObjectSpec = Annotated[str, AfterValidator(resolve_object_spec)]


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
