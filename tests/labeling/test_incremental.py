"""Incremental labeling: an edited LF is recomputed alone; new items are voted on alone."""

from __future__ import annotations

import pytest

from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from thresher.storage.schema import connect
from tests.conftest import YOUTUBE_EXAMPLE

CLASSES = ["HAM", "SPAM"]
LFS = [
    {"kind": "keyword", "name": "subscribe", "label": "SPAM", "terms": ["subscribe"]},
    {"kind": "regex", "name": "check_out", "label": "SPAM", "pattern": r"check\s+out", "case_sensitive": False},
    {"kind": "sql", "name": "short", "label": "HAM", "where": "length(text) < 20"},
    {"kind": "python", "function": f"{YOUTUBE_EXAMPLE / 'lfs.py'}:shouting"},
]


def _ingest(con, pattern: str) -> None:
    ingest(con, IngestConfig(classes=CLASSES, sources=[SourceConfig(
        path=str(YOUTUBE_EXAMPLE / "data" / pattern), dataset="youtube",
        columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"})]))


def _votes(con, run_id: str) -> set[tuple]:
    return set(con.execute("SELECT item_id, lf, vote FROM votes WHERE run_id = ?", [run_id]).fetchall())


def test_only_what_changed_is_recomputed(con, db_path, tmp_path):
    _ingest(con, "Youtube0[1-4]-*.csv")
    n_first = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
    config = LabelingConfig(classes=CLASSES, lfs=LFS, model={"model": "majority"})

    first = label(con, config, run_id="a")
    assert first.evaluated == {"subscribe": n_first, "check_out": n_first, "short": n_first, "shouting": n_first}

    again = label(con, config, run_id="b")
    assert set(again.evaluated.values()) == {0}
    assert _votes(con, "b") == _votes(con, "a")

    edited = [dict(LFS[0], terms=["subscribe", "sub4sub"])] + LFS[1:]
    third = label(con, config.model_copy(update={"lfs": LabelingConfig(classes=CLASSES, lfs=edited).lfs}), run_id="c")
    assert third.evaluated == {"subscribe": n_first, "check_out": 0, "short": 0, "shouting": 0}

    _ingest(con, "Youtube05-*.csv")
    n_new = con.execute("SELECT count(*) FROM items").fetchall()[0][0] - n_first
    fourth = label(con, config, run_id="d")
    assert fourth.evaluated == {"subscribe": n_new, "check_out": n_new, "short": n_new, "shouting": n_new}
    assert fourth.n_items == n_first + n_new
    # Earlier runs keep exactly the items they saw.
    assert _votes(con, "a") == _votes(con, "b")
    assert {item for item, _, _ in _votes(con, "a")} < {item for item, _, _ in _votes(con, "d")}

    # The incremental result equals a computation from scratch.
    fresh = connect(tmp_path / "fresh.duckdb")
    _ingest(fresh, "*.csv")
    label(fresh, config, run_id="d")
    assert _votes(fresh, "d") == _votes(con, "d")
    labels = "SELECT item_id, label, probs FROM labels WHERE run_id = 'd' ORDER BY item_id"
    assert fresh.execute(labels).fetchall() == con.execute(labels).fetchall()
    fresh.close()


def test_a_failed_lf_group_keeps_the_groups_already_cached(con):
    _ingest(con, "Youtube01-*.csv")
    good = LabelingConfig(classes=CLASSES, lfs=LFS[:3], model={"model": "majority"})
    label(con, good, run_id="ok")
    bad_sql = [{"kind": "sql", "name": "short", "label": "HAM", "where": "length(text) < 20"},
               {"kind": "python", "function": f"{YOUTUBE_EXAMPLE / 'lfs.py'}:no_such_lf"}]
    with pytest.raises(AttributeError, match="no Python LF named 'no_such_lf'"):
        label(con, LabelingConfig(classes=CLASSES, lfs=bad_sql), run_id="bad")
    cached = con.execute("SELECT count(*) FROM lf_progress").fetchall()[0][0]
    assert cached == 3


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["raise SystemExit(3)", "import sys\nsys.exit('bye')", "import os\nos._exit(7)"])
def test_an_lf_module_that_ends_the_process_at_import_fails_the_label_stage_cleanly(tmp_path, ending):
    """A Python LF file that exits while being imported fails the label stage with an error naming the
    file and a ``failed`` run row; the process lives on (run in a child process: on a version without
    the guard, ``os._exit`` would end the test runner itself)."""
    import subprocess
    import sys

    lfs = tmp_path / "my_lfs.py"
    lfs.write_text(f"{ending}\n\ndef shouting(x):\n    return 1 if x.text.isupper() else -1\n")
    (tmp_path / "rows.csv").write_text("text\nHELLO\nhello\nWIN NOW\n")
    script = (
        "import sys, thresher\n"
        "config = {'classes': ['HAM', 'SPAM'], 'sources': [{'path': 'rows.csv', 'dataset': 'd'}],\n"
        "          'labeling': {'lfs': [{'kind': 'python', 'function': 'my_lfs.py:shouting'}], 'model': {'model': 'majority'}},\n"
        "          'stages': ['ingest', 'label']}\n"
        "try:\n"
        "    thresher.Pipeline(config, base_dir='.', db='t.duckdb').run()\n"
        "except Exception as exc:\n"
        "    print('error:', exc)\n"
        "print('still alive')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "still alive" in done.stdout, (done.returncode, done.stdout, done.stderr[-2000:])
    assert "error:" in done.stdout and "my_lfs.py" in done.stdout and "while being imported" in done.stdout
    from thresher.storage.schema import connect

    con = connect(tmp_path / "t.duckdb", read_only=True)
    status, error = con.execute("SELECT status, error FROM runs WHERE stage = 'label'").fetchone()
    con.close()
    assert status == "failed" and "my_lfs.py" in error and "while being imported" in error
