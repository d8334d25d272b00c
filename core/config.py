"""Base class of every stage's typed configuration, with a stable fingerprint."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
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


@functools.cache
def field_docs(cls: type[BaseModel]) -> dict[str, str]:
    """Each field's documentation as written beside it in the class's source: the comment lines just above
    the field and the comment at the end of its line. One place for the docs, which :meth:`StageConfig`'s
    JSON schema (``thresher schema``, YAML editors) and ``thresher check --explain`` show."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    pending: list[str] = []
    body: int | None = None
    for line in lines[1:]:
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        body = indent if body is None else body
        if indent != body:
            continue
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and match.group(1) in cls.__annotations__:
            _, hash_, trailing = stripped.partition("  # ")
            text = " ".join([*pending, trailing.strip()] if hash_ else pending).strip()
            if text:
                docs[match.group(1)] = text
        pending = []
    return docs


def _describe_fields(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Fill each property's ``description`` from :func:`field_docs` where a ``Field`` gives none."""
    for name, doc in field_docs(cls).items():
        prop = schema.get("properties", {}).get(name)
        if prop is not None and "description" not in prop:
            prop["description"] = doc


class StageConfig(BaseModel):
    """A frozen, strictly validated stage configuration.

    ``fingerprint()`` is a short hash of the canonical JSON form: two configs with the same
    fingerprint make a stage compute the same thing, so it keys runs and caches. Where it runs
    (``device``) is left out: a GPU run computes what a CPU run does, up to float rounding.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_describe_fields)

    def fingerprint(self) -> str:
        """Return a 16-hex-digit hash of this configuration's canonical JSON."""
        canonical = json.dumps(_without_runtime(self.model_dump(mode="json")), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
