"""Your own objects in a pipeline: named in the YAML as ``module:attribute`` or ``file.py:attribute``
(relative to the config file), or passed as Python objects to :class:`thresher.Pipeline`.

One loader serves every family that takes them (Python LFs, detectors, label models, scikit-learn
estimators). A config that holds an object keeps it as given; its fingerprint (what a cached run is
keyed by) holds :func:`object_token`: a scikit-learn estimator's class and parameters, another
object's pickled bytes, so an unchanged object reuses a run and a changed one reruns the stage.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import os
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, PlainSerializer

from thresher.core.config import resolve_object_spec


USER_MODULE_PREFIX = "thresher_user_"  # modules loaded from users' files (pickled by value for workers)


class ModuleImportError(RuntimeError):
    """A user's module tried to end the process while being imported."""


@contextmanager
def no_exit_at_import(where: str) -> Iterator[None]:
    """Import a user's module without letting it end the process: ``sys.exit``/``raise SystemExit`` and
    ``os._exit`` at import become a :class:`ModuleImportError` naming the module, which fails the stage
    with one error line and a ``failed`` run row (a module is for definitions; a script's code belongs
    under ``if __name__ == "__main__":``). A crash in native code cannot be caught in-process."""
    real_exit = os._exit

    def refuse(status: int = 0) -> NoReturn:
        raise ModuleImportError(f"The Python module '{where}' called os._exit({status}) while being imported")

    os._exit = refuse
    try:
        yield
    except SystemExit as exc:
        raise ModuleImportError(f"The Python module '{where}' exited while being imported (SystemExit({exc.code!r})); "
                                "a module thresher loads must only define things: put script code under "
                                "if __name__ == '__main__':") from None
    finally:
        os._exit = real_exit


def load_python_object(spec: str, *, what: str = "Python LF") -> Any:
    """The object named by ``path/to/file.py:attr`` or ``package.module:attr``; ``what`` names it in errors."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"A {what} is given as 'file.py:name' or 'module:name'. Got {spec!r} instead.")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise FileNotFoundError(f"The {what} file '{path}' (from {spec!r}) does not exist.")
        module_name = USER_MODULE_PREFIX + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        module = sys.modules.get(module_name)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            try:
                with no_exit_at_import(str(path)):
                    module_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]  # a half-imported module is not reused by the next load
                raise
    else:
        with no_exit_at_import(target):
            module = importlib.import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        available = sorted(n for n in vars(module) if not n.startswith("_"))
        raise AttributeError(f"'{target}' has no {what} named {attr!r}. Available names: {available}") from None


def spec_files(*values: Any) -> list[str]:
    """The files of the ``file.py:attribute`` specs among ``values`` (a stage keys its cached runs by
    their state, so editing the file reruns it)."""
    files = []
    for value in values:
        if isinstance(value, str):
            target, sep, _ = value.rpartition(":")
            if sep and target.endswith(".py") and Path(target).is_file():
                files.append(target)
    return files


def _code_hash(obj: Any) -> str:
    """A short hash of the source of a class or function (editing it changes the token); '' if unknown."""
    try:
        return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:12]
    except (OSError, TypeError):
        return ""


def object_token(value: Any) -> Any:
    """What a config's fingerprint holds for ``value``: a spec string as written; a class or function
    as its name and a hash of its source; a scikit-learn estimator as its class and parameters; another
    object as its class (with its source's hash) and a hash of its pickled bytes (an object that cannot
    be pickled gets its identity, so it is never taken for another)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, type) or inspect.isfunction(value):
        return f"{value.__module__}.{value.__qualname__}#{_code_hash(value)}"
    kind = f"{type(value).__module__}.{type(value).__qualname__}#{_code_hash(type(value))}"
    if hasattr(value, "get_params"):
        params = {k: object_token(v) if not isinstance(v, (list, tuple, dict)) else repr(v)
                  for k, v in sorted(value.get_params(deep=False).items())}
        return f"{kind}({params})"
    try:
        return f"{kind}:{hashlib.sha256(pickle.dumps(value)).hexdigest()[:16]}"
    except Exception:
        return f"{kind}@{id(value)}"


# A config field that holds a spec string (its file relative to the config file) or a user's object;
# its JSON form (what the fingerprint hashes) is the object's token.
PluginRef = Annotated[Any, AfterValidator(resolve_object_spec), PlainSerializer(object_token, when_used="json")]


def fresh(value: Any, *, what: str, params: dict[str, Any] | None = None,
          required: tuple[str, ...] = (), context: dict[str, Any] | None = None) -> Any:
    """A new instance from ``value``: a spec is loaded first; a class or factory is called with ``params``,
    plus each ``context`` value whose name it takes (a label model's ``cardinality`` and ``seed``); an
    object is copied (``sklearn.base.clone`` for estimators), so a run never changes the user's object.
    ``required`` names the methods the result must have (a clear error otherwise)."""
    obj = load_python_object(value, what=what) if isinstance(value, str) else value
    made = isinstance(obj, type) or (callable(obj) and not all(hasattr(obj, m) for m in required))
    if made:
        try:
            obj = obj(**_taken(obj, context or {}), **(params or {}))
        except TypeError as exc:
            raise TypeError(f"The {what} {object_name(value)} could not be made with params {params or {}}: {exc}") from None
    elif params:
        raise TypeError(f"The {what} {object_name(value)} is an object, not a class: params {params} cannot be applied; "
                        "give the class, or set them on the object.")
    elif hasattr(obj, "get_params"):
        from sklearn.base import clone

        obj = clone(obj)
    else:
        obj = copy.deepcopy(obj)
    missing = [m for m in required if not callable(getattr(obj, m, None))]
    if missing:
        raise TypeError(f"The {what} {object_name(value)} needs {' and '.join(f'{m}()' for m in required)}; "
                        f"{type(obj).__name__} has no {' or '.join(missing)}.")
    return obj


def _taken(factory: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The ``context`` values ``factory`` takes by name (all of them when it takes ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(context)
    return {k: v for k, v in context.items() if k in parameters}


def object_name(value: Any) -> str:
    """How messages name a part: its spec as written, or its class's name."""
    return repr(value) if isinstance(value, str) else type(value).__name__ if not isinstance(value, type) else value.__name__
