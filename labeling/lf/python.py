"""Python LFs: Snorkel ``@labeling_function`` objects or plain callables, run per item."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from thresher.core.plugins import ModuleImportError, load_python_object
from thresher.labeling.lf.base import LabelingFunction, Row

__all__ = ["PythonLF", "LFImportError", "load_python_lf", "load_python_object"]


def _source_of(obj: Any) -> str:
    """The source code that defines an LF (Snorkel wraps the function in ``_f``)."""
    target = getattr(obj, "_f", obj)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        return repr(target)


class PythonLF(LabelingFunction):
    """Wrap a Snorkel ``LabelingFunction`` or any ``callable(x) -> int`` as a thresher LF.

    Snorkel LFs keep their preprocessors and resources: calling this calls the Snorkel object.
    The version is a hash of the function's source, so editing the code re-runs the LF.

    Examples
    --------
    >>> from snorkel.labeling import labeling_function
    >>> @labeling_function()
    ... def short(x):
    ...     return 0 if len(x.text.split()) < 5 else -1
    >>> lf = PythonLF(short)
    >>> lf.name, lf(Row(text="so good")), lf(Row(text="one two three four five six"))
    ('short', 0, -1)
    """

    kind = "python"

    def __init__(self, function: Callable[[Any], int], *, name: str | None = None) -> None:
        if not callable(function):
            raise TypeError(f"The 'function' of PythonLF must be callable. Got {type(function).__name__} instead.")
        super().__init__(name or getattr(function, "name", None) or function.__name__)
        self.function = function

    def __call__(self, x: Row) -> int:
        vote = self.function(x)
        if vote is None:
            return -1
        return int(vote)

    def definition(self) -> str:
        """The LF's source plus its Snorkel preprocessors' sources: editing either re-runs it."""
        parts = [_source_of(self.function)]
        parts += [_source_of(mapper) for mapper in getattr(self.function, "_pre", None) or []]
        return "\n".join(parts)


LFImportError = ModuleImportError  # the name earlier versions raised


def load_python_lf(spec: str, *, name: str | None = None) -> PythonLF:
    """Load ``path/to/file.py:attr`` or ``package.module:attr`` as a :class:`PythonLF`."""
    return PythonLF(load_python_object(spec), name=name)
