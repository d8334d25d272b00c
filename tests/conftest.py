"""Shared fixtures (the real datasets in ../shared/data, a fresh database file, a seed, the Prefect test
server) and the tiers: the markers, and the rule that keeps unmarked tests fast.

Tiers: ``make test`` runs the unmarked tests (the fast tier); ``make test-all`` runs everything. A test
takes ``slow`` (seconds of work), ``quality`` (real-data accuracy thresholds), ``prefect`` (needs the
Prefect server; given by :func:`pytest_collection_modifyitems` to everything under tests/flows and
tests/deploy) or ``gpu`` (needs CUDA; skipped without it). An unmarked test whose call takes longer
than :data:`FAST_CALL_S` seconds (times the load factor, see :func:`slow_call_limit`) fails the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from thresher.storage.schema import connect

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("THRESHER_SHARED_DATA", REPO.parent / "shared" / "data"))
YOUTUBE_EXAMPLE = REPO / "examples" / "youtube"

TIER_MARKERS = ("slow", "quality", "prefect", "gpu")
PREFECT_FOLDERS = ("flows", "deploy")
FAST_CALL_S = 5.0
_TOO_SLOW: list[tuple[str, float, float]] = []
# Libraries that take seconds to import: a test module imports them inside the tests that use them.
HEAVY_IMPORTS = ("torch", "snorkel", "prefect", "sklearn", "cleanlab", "transformers", "sentence_transformers",
                 "datasets", "crowdkit", "dask")
HEAVY_AT_COLLECTION = pytest.StashKey[list[str]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(REPO / "tests").parts
        if parts[0] in PREFECT_FOLDERS:
            item.add_marker(pytest.mark.prefect)


def pytest_collection_finish(session: pytest.Session) -> None:
    import sys

    loaded = {name.partition(".")[0] for name in sys.modules}
    session.config.stash[HEAVY_AT_COLLECTION] = sorted(loaded.intersection(HEAVY_IMPORTS))


def slow_call_limit() -> float:
    """The longest call an unmarked test may take: ``FAST_CALL_S`` times a factor for a loaded machine.

    The factor is ``THRESHER_SLOW_FACTOR`` if set, else the 1-minute load average per core when that
    is above 1 (two CPU-bound processes beside the suite on 2 cores make it about 2): a test gets the
    share of the machine it would have alone.
    """
    factor = os.environ.get("THRESHER_SLOW_FACTOR")
    if factor is not None:
        return FAST_CALL_S * float(factor)
    return FAST_CALL_S * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        took = time.perf_counter() - start
        if not any(item.get_closest_marker(name) for name in TIER_MARKERS):
            limit = slow_call_limit()
            if took > limit:
                _TOO_SLOW.append((item.nodeid, took, limit))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _TOO_SLOW and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _TOO_SLOW:
        terminalreporter.section("unmarked tests over the fast-tier limit", sep="=", red=True, bold=True)
        for nodeid, took, limit in _TOO_SLOW:
            terminalreporter.line(f"{nodeid}: {took:.1f} s (limit {limit:.1f} s)")
        terminalreporter.line("Make the test cheaper or mark it slow/quality (CONTRIBUTING.md: tiers); "
                              "THRESHER_SLOW_FACTOR scales the limit on a loaded machine.")


@pytest.fixture(autouse=True)
def _tier_needs(request: pytest.FixtureRequest) -> None:
    """A ``prefect`` test gets the session's Prefect server; a ``gpu`` test skips where torch sees no GPU."""
    if request.node.get_closest_marker("prefect") and "served_prefect" not in request.fixturenames:
        request.getfixturevalue("prefect_server")  # tests/deploy starts a real `prefect server` of its own
    if request.node.get_closest_marker("gpu"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("torch sees no GPU here")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """One Prefect test server for the whole session (it takes ~16 s to start on 2 cores)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # A wedged test server fails the test within minutes instead of retrying for hours.
    os.environ["PREFECT_API_REQUEST_TIMEOUT"] = "30"
    os.environ["PREFECT_CLIENT_MAX_RETRIES"] = "2"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield

_FORKS: list[int] = []
os.register_at_fork(before=lambda: _FORKS.append(os.getpid()))


@pytest.fixture(autouse=True)
def never_fork():
    """Fail any test whose code forks this process (spawned and exec'd processes are fine).

    A fork copies the locks that Prefect's, DuckDB's and torch's threads hold at that moment, so
    the child can deadlock; cleanlab's default ``n_jobs`` forked a pool and hung a CI run this way.
    """
    before = len(_FORKS)
    yield
    assert len(_FORKS) == before, "the code under test forked the process (os.fork / a 'fork' multiprocessing pool)"


def minimal_config(directory: Path, shared_data: Path, extra: str = "") -> Path:
    """A small pipeline config: WRENCH YouTube test split (250 items), its weak labels, majority vote,
    3-fold detect, plus ``extra`` YAML; written to ``directory/thresher.yaml``."""
    path = directory / "thresher.yaml"
    path.write_text(f"""
classes: [HAM, SPAM]
sources:
  - {{path: "{shared_data / 'wrench_youtube'}/test.json", dataset: youtube, format: wrench}}
labeling:
  source_votes: true
  model: {{model: majority}}
detect: {{n_folds: 3}}
{extra}""")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(f"The shared datasets are not at {SHARED_DATA}; set THRESHER_SHARED_DATA.")
    return SHARED_DATA


@pytest.fixture(scope="session")
def static(tmp_path_factory):
    """The static MiniLM encoder, distilled once per test session into a temporary cache."""
    from thresher.features import StaticEncoder

    model = StaticEncoder(directory=tmp_path_factory.mktemp("thresher-cache"))
    model.setup()  # distils from the packaged MiniLM, offline (~15-30 s)
    return model


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "thresher.duckdb"


@pytest.fixture
def con(db_path: Path):
    connection = connect(db_path)
    yield connection
    connection.close()


@pytest.fixture
def seed() -> int:
    """sklearn's convention: tests pass for any seed in 0-99; THRESHER_SEED sweeps them."""
    return int(os.environ.get("THRESHER_SEED", 42))
