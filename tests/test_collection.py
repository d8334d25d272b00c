"""Collecting the suite stays cheap: no test module imports a heavy library at import time."""

from __future__ import annotations

import pytest

from tests.tiers import HEAVY_AT_COLLECTION


def test_collecting_the_tests_imported_no_heavy_library(request: pytest.FixtureRequest) -> None:
    loaded = request.config.stash[HEAVY_AT_COLLECTION]
    assert not loaded, (f"collecting the tests imported {loaded}: import them inside the tests or fixtures that use "
                        "them (CONTRIBUTING.md: tiers)")
