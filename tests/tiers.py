"""The test tiers (CONTRIBUTING.md): the markers, and two rules that keep the fast tier fast.

``make test`` runs the unmarked tests (the fast tier); ``make test-all`` (CI) runs everything. A test
takes ``slow`` (seconds of work), ``quality`` (real-data accuracy thresholds), ``prefect`` (needs the
Prefect server; given here to everything under tests/flows and tests/deploy) or ``gpu`` (needs CUDA).

1. An unmarked test whose call takes longer than :data:`FAST_CALL_S` seconds, times a factor for a
   loaded machine (:class:`CallClock`), fails the run and is listed.
2. Collecting the tests imports none of :data:`HEAVY_IMPORTS` (tests/test_collection.py reads what
   :func:`pytest_collection_finish` saw).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TIER_MARKERS = ("slow", "quality", "prefect", "gpu")
PREFECT_FOLDERS = ("flows", "deploy")
FAST_CALL_S = 5.0
# Libraries that take seconds to import: a test module imports them inside the tests that use them.
HEAVY_IMPORTS = ("torch", "snorkel", "prefect", "sklearn", "cleanlab", "transformers", "sentence_transformers",
                 "datasets", "crowdkit", "dask")
HEAVY_AT_COLLECTION = pytest.StashKey[list[str]]()
TESTS = Path(__file__).resolve().parent


class ImportClock(importlib.abc.MetaPathFinder):
    """Times the first import of each of ``names`` (top-level packages). A library loads once per
    session, in whichever test first needs it, so that test is not charged for it."""

    def __init__(self, names: tuple[str, ...] = HEAVY_IMPORTS) -> None:
        self.names = names
        self.seconds = 0.0
        self._depth = 0

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def timed(module) -> None:
            start = time.perf_counter()
            self._depth += 1
            try:
                run(module)
            finally:
                self._depth -= 1
                if not self._depth:  # torch inside snorkel is counted once, in snorkel's import
                    self.seconds += time.perf_counter() - start

        spec.loader.exec_module = timed  # type: ignore[method-assign]
        return spec


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children), or None
    where /proc/stat cannot be read."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    own = os.times()
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system + own.children_user + own.children_system


@dataclass
class CallClock:
    """One test call: its wall time less first imports of heavy libraries, and the limit it had.

    The limit is ``FAST_CALL_S`` times a factor: ``THRESHER_SLOW_FACTOR`` if set; otherwise the
    machine's cores over the cores the test had, where the others' share is the CPU time the rest of
    the machine used during the call (from /proc/stat, less this process's). Idle, the factor is 1;
    two CPU-bound processes beside the suite on 2 cores make it 2 to 4 (at most 4: a test keeps at
    least half a core).
    """

    imports: ImportClock
    started: float = field(default_factory=time.perf_counter)
    cpu: tuple[float, float] | None = field(default_factory=_cpu_seconds)
    imported_before: float = 0.0
    set_factor: str | None = None  # read when the call starts: a test may set the variable for a session it runs

    def __post_init__(self) -> None:
        self.imported_before = self.imports.seconds
        self.set_factor = os.environ.get("THRESHER_SLOW_FACTOR")

    def stop(self) -> tuple[float, float]:
        wall = time.perf_counter() - self.started
        took = wall - (self.imports.seconds - self.imported_before)
        return took, FAST_CALL_S * self._factor(wall)

    def _factor(self, wall: float) -> float:
        if self.set_factor is not None:
            return float(self.set_factor)
        now = _cpu_seconds()
        if self.cpu is None or now is None or wall <= 0:
            return 1.0
        cores = os.cpu_count() or 1
        others = max(0.0, (now[0] - self.cpu[0]) - (now[1] - self.cpu[1])) / wall
        return cores / max(cores - others, min(cores, 2) / 4)


_IMPORTS = ImportClock()
_TOO_SLOW: list[tuple[str, float, float]] = []


def pytest_configure(config: pytest.Config) -> None:
    if _IMPORTS not in sys.meta_path:
        sys.meta_path.insert(0, _IMPORTS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if TESTS in item.path.parents and item.path.relative_to(TESTS).parts[0] in PREFECT_FOLDERS:
            item.add_marker(pytest.mark.prefect)


def pytest_collection_finish(session: pytest.Session) -> None:
    loaded = {name.partition(".")[0] for name in sys.modules}
    session.config.stash[HEAVY_AT_COLLECTION] = sorted(loaded.intersection(HEAVY_IMPORTS))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    clock = CallClock(_IMPORTS)
    try:
        return (yield)
    finally:
        took, limit = clock.stop()
        if took > limit and not any(item.get_closest_marker(name) for name in TIER_MARKERS):
            _TOO_SLOW.append((item.nodeid, took, limit))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _TOO_SLOW and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _TOO_SLOW:
        terminalreporter.section("unmarked tests over the fast-tier limit", sep="=", red=True, bold=True)
        for nodeid, took, limit in _TOO_SLOW:
            terminalreporter.line(f"{nodeid}: {took:.1f} s (limit {limit:.1f} s)")
        terminalreporter.line("Make the test cheaper or mark it slow or quality (CONTRIBUTING.md: tiers). The limit "
                              "grows with the CPU other processes take; THRESHER_SLOW_FACTOR sets its factor.")
