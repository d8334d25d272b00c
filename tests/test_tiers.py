"""The fast tier's rules hold: an unmarked test over the limit fails the run, a marked one does not,
and a heavy library's first import is not charged to the test that loads it."""

from __future__ import annotations

import importlib
import sys
import time

import pytest

from tests.conftest import REPO
from tests.tiers import ImportClock

SLOW_TESTS = """
import time
import pytest

def test_quick():
    pass

def test_unmarked_and_slow():
    time.sleep(0.4)

@pytest.mark.slow
def test_marked_slow():
    time.sleep(0.4)

@pytest.mark.quality
def test_marked_quality():
    time.sleep(0.4)
"""


def test_an_unmarked_test_over_the_limit_fails_the_run_and_is_named(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only tests.tiers: the inner sessions start in ~1 s
    monkeypatch.setenv("THRESHER_SLOW_FACTOR", "0.02")  # a 0.1 s limit
    pytester.makepyfile(test_timing=SLOW_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: x\n    quality: x\n    prefect: x\n    gpu: x\n")
    result = pytester.runpytest_subprocess("-p", "tests.tiers", "-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*unmarked tests over the fast-tier limit*",
                                 "test_timing.py::test_unmarked_and_slow: 0.* s (limit 0.1 s)", "*4 passed*"])
    assert "test_marked_slow" not in result.stdout.str() and "test_marked_quality" not in result.stdout.str()

    monkeypatch.setenv("THRESHER_SLOW_FACTOR", "1")  # 5 s: every call is under it
    assert pytester.runpytest_subprocess("-p", "tests.tiers", "-q").ret == pytest.ExitCode.OK


def test_the_first_import_of_a_heavy_library_is_timed(tmp_path, monkeypatch) -> None:
    (tmp_path / "heavylib").mkdir()
    (tmp_path / "heavylib" / "__init__.py").write_text("import time\ntime.sleep(0.3)\nfrom heavylib import part\n")
    (tmp_path / "heavylib" / "part.py").write_text("import time\ntime.sleep(0.1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    clock = ImportClock(("heavylib",))
    sys.meta_path.insert(0, clock)
    try:
        start = time.perf_counter()
        importlib.import_module("heavylib")
        took = time.perf_counter() - start
    finally:
        sys.meta_path.remove(clock)
        sys.modules.pop("heavylib", None)
        sys.modules.pop("heavylib.part", None)
    assert 0.4 <= clock.seconds <= took  # the package with what it imports, once
