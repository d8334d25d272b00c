"""The import layers: each package imports only the layers below it, and no module cycle exists.

    core  <  storage  <  features  <  labeling  <  reweighting  <  pipeline  <  flows  <  thresher (the app)

Every import is counted, at module level or inside a function, except those under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["core", "storage", "features", "labeling", "reweighting", "pipeline", "flows", "app"]
FOLDERS = {"core": "core", "storage": "storage", "features": "features", "labeling": "labeling",
           "reweighting": "reweighting", "pipeline": "pipeline", "flows": "flows", "app": "thresher"}


@functools.cache
def _modules() -> dict[str, Path]:
    """Every module of the project by its installed name (thresher.<layer>.<...>); one walk of the tree."""
    modules = {}
    for layer, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            prefix = ["thresher"] if layer == "app" else ["thresher", folder]
            modules[".".join(prefix + parts)] = path
    return modules


def _layer(module: str) -> str:
    if module == "thresher":
        return "core"  # the root package: ``__version__`` and the lazy notebook API names, nothing else
    parts = module.split(".")
    return next((layer for layer, folder in FOLDERS.items() if layer != "app" and len(parts) > 1 and parts[1] == folder),
                "app")


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (the deepest module each import statement names)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        for name in names:
            for generic in ("core", "storage", "features", "labeling", "reweighting", "pipeline", "flows"):
                assert name.split(".")[0] != generic, f"{path}: imports the generic top-level name {name!r}"
            if name in modules:
                found.add(name)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Each module's project imports, parsed once per session when a test first asks."""
    modules = _modules()
    return {module: _imports(path, modules) for module, path in modules.items()}


def test_each_layer_imports_only_the_layers_below() -> None:
    wrong = [f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
             for module, targets in _graph().items() for target in targets
             if LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))]
    assert not wrong, "\n".join(wrong)


def test_the_root_package_imports_only_the_ground_floor() -> None:
    assert {_layer(m) for m in _graph()["thresher"]} <= {"core"}, _graph()["thresher"]


def test_no_module_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_every_package_folder_is_installed_under_thresher() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    assert set(tool["packages"]) == packages
    assert {name for name in tool["packages"] if "." not in name} == {"thresher"}


@pytest.mark.parametrize("module", sorted(m for m in _modules() if m.split(".")[1:2] == ["core"]))
def test_the_ground_floor_imports_no_stage(module: str) -> None:
    assert {_layer(m) for m in _graph()[module]} <= {"core"}, _graph()[module]


def test_every_registered_stage_is_shown_by_the_cli_and_configured_by_the_pipeline() -> None:
    from thresher.cli import SHOW
    from thresher.core.stages import NAMES, STAGES
    from thresher.pipeline.config import PipelineConfig

    assert list(SHOW) == list(NAMES)
    from thresher.cli import app

    commands = {c.name: c for c in app.registered_commands}
    for spec in STAGES:  # each stage's command is generated from the registry, with its help line
        assert commands[spec.name].callback.__doc__ == spec.help and spec.help, spec.name
        options = set(inspect.signature(commands[spec.name].callback).parameters)
        assert ("force" in options) == spec.cached and ("out_dir" in options) == (spec.section == "export")
    assert {spec.section for spec in STAGES} <= set(PipelineConfig.model_fields)
    for spec in STAGES:
        assert spec.load().run.__qualname__.endswith(".run"), spec.name  # each Stage defines run()
        module, _, name = spec.summary.partition(":")
        assert callable(getattr(__import__(module, fromlist=[name]), name).as_dict), spec.name
