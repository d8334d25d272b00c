"""One Prefect test server for the whole session (it takes ~16 s to start on 2 cores)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # A wedged test server fails the test within minutes instead of retrying for hours.
    os.environ["PREFECT_API_REQUEST_TIMEOUT"] = "30"
    os.environ["PREFECT_CLIENT_MAX_RETRIES"] = "2"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
