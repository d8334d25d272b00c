"""Shared fixtures: the real datasets in ../shared/data, a fresh database file, a seed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.schema import connect

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("THRESHER_SHARED_DATA", REPO.parent / "shared" / "data"))
YOUTUBE_EXAMPLE = REPO / "examples" / "youtube"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(f"The shared datasets are not at {SHARED_DATA}; set THRESHER_SHARED_DATA.")
    return SHARED_DATA


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
