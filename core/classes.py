"""Class labels as users write them (ids, numeric strings, names) mapped to class ids."""

from __future__ import annotations

from typing import Any

import numpy as np


def parse_class(value: Any, classes: list[str]) -> int | None:
    """Map a raw label value (class id, numeric string or class name) to a class id.

    Returns None for a missing value and raises ValueError for anything else unknown.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"a label cannot be a boolean ({value!r})")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        stripped = value.strip()
        lowered = [c.lower() for c in classes]
        if stripped.lower() in lowered:
            return lowered.index(stripped.lower())
        if stripped.lstrip("-").isdigit():
            value = int(stripped)
    if isinstance(value, int):
        if 0 <= value < len(classes):
            return value
        raise ValueError(f"class id {value} is outside 0..{len(classes) - 1}")
    raise ValueError(f"{value!r} is neither a class id nor one of the classes {classes}")


def class_names(ids: list[int] | None, classes: list[str]) -> str:
    """Class ids as a person reads them: their names, comma-separated (an id without a name as the id;
    ``-`` for none).

    >>> class_names([1, 0, 7], ["HAM", "SPAM"])
    'SPAM, HAM, 7'
    """
    return ", ".join(classes[i] if 0 <= i < len(classes) else str(i) for i in ids or []) or "-"


def gold_ids(values: Any) -> np.ndarray:
    """Gold class ids as an int64 array, -1 where an item has no gold label (the ``items.gold`` NULLs);
    ``values`` is a list or an Arrow integer column (read without a Python object per row).

    >>> gold_ids([1, None, 0]).tolist()
    [1, -1, 0]
    """
    if hasattr(values, "fill_null"):
        return np.asarray(values.fill_null(-1).to_numpy(), dtype=np.int64)
    return np.array([-1 if value is None else value for value in values], dtype=np.int64)
