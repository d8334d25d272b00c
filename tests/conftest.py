"""Shared fixtures: the real datasets in ../shared/data, a fresh database file, a seed, the Prefect test
server for ``prefect`` tests, the GPU skip for ``gpu`` tests. The tiers themselves (markers, the 5 s
rule, cheap collection) are in :mod:`tests.tiers`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from thresher.storage.schema import connect

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("THRESHER_SHARED_DATA", REPO.parent / "shared" / "data"))
YOUTUBE_EXAMPLE = REPO / "examples" / "youtube"

pytest_plugins = ["tests.tiers", "pytester"]  # pytester: tests/test_tiers.py runs inner sessions


@pytest.fixture(autouse=True)
def _tier_needs(request: pytest.FixtureRequest) -> None:
    """A ``prefect`` test gets the session's Prefect server; a ``gpu`` test skips where torch sees no GPU."""
    if request.node.get_closest_marker("prefect"):
        request.getfixturevalue("prefect_server")  # tests/deploy overrides it with a real `prefect server start`
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
    3-fold detect, every split exported, plus ``extra`` YAML; written to ``directory/thresher.yaml``."""
    path = directory / "thresher.yaml"
    path.write_text(f"""
classes: [HAM, SPAM]
sources:
  - {{path: "{shared_data / 'wrench_youtube'}/test.json", dataset: youtube, format: wrench}}
labeling:
  source_votes: true
  model: {{model: majority}}
detect: {{n_folds: 3}}
export: {{splits: all}}  # the one WRENCH file is the 'test' split, which the default would hold out
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
