"""Python LFs: Snorkel ``@labeling_function`` objects or plain callables, run per item."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from thresher.labeling.lf.base import LabelingFunction, Row


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


class LFImportError(RuntimeError):
    """A Python LF module tried to end the process while being imported."""


@contextmanager
def _no_exit_at_import(where: str) -> Iterator[None]:
    """Import an LF module without letting it end the process: ``sys.exit``/``raise SystemExit`` and
    ``os._exit`` at import become an :class:`LFImportError` naming the module, which fails the label stage
    with one error line and a ``failed`` run row (a module is for defining LFs; a script's code belongs
    under ``if __name__ == "__main__":``). A crash in native code cannot be caught in-process."""
    real_exit = os._exit

    def refuse(status: int = 0) -> NoReturn:
        raise LFImportError(f"The Python LF module '{where}' called os._exit({status}) while being imported")

    os._exit = refuse  # type: ignore[assignment]
    try:
        yield
    except SystemExit as exc:
        raise LFImportError(f"The Python LF module '{where}' exited while being imported (SystemExit({exc.code!r})); "
                            "an LF module must only define LFs: put script code under if __name__ == '__main__':") from None
    finally:
        os._exit = real_exit  # type: ignore[assignment]


def load_python_lf(spec: str, *, name: str | None = None) -> PythonLF:
    """Load ``path/to/file.py:attr`` or ``package.module:attr`` as a :class:`PythonLF`."""
    return PythonLF(load_python_object(spec), name=name)


def load_python_object(spec: str) -> Any:
    """The object named by ``path/to/file.py:attr`` or ``package.module:attr`` (an LF, a prompted LF)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"A Python LF is given as 'file.py:name' or 'module:name'. Got {spec!r} instead.")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise FileNotFoundError(f"The Python LF file '{path}' (from {spec!r}) does not exist.")
        module_name = "thresher_lfs_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        module = sys.modules.get(module_name)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            try:
                with _no_exit_at_import(str(path)):
                    module_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]  # a half-imported module is not reused by the next load
                raise
    else:
        with _no_exit_at_import(target):
            module = importlib.import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        available = sorted(n for n in vars(module) if not n.startswith("_"))
        raise AttributeError(f"'{target}' has no LF named {attr!r}. Available names: {available}") from None
