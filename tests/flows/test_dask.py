"""LF application in chunks on a Dask LocalCluster (2 worker processes) through prefect-dask."""

from __future__ import annotations

import shutil

import pytest

from flows import ingest_flow, label_flow
from storage.schema import connect
from tests.conftest import YOUTUBE_EXAMPLE

pytestmark = [pytest.mark.slow, pytest.mark.prefect]

CONFIG = """
classes: [HAM, SPAM]
sources:
  - {{path: "{data}/[tv]*.json", dataset: youtube, format: wrench}}
labeling:
  lfs:
    - {{kind: keyword, name: my_channel, label: SPAM, terms: [my channel, my video]}}
    - {{kind: regex, name: link, label: SPAM, pattern: 'https?://|www\\.'}}
    - {{kind: regex, name: check_ahead, label: SPAM, pattern: 'check(?= out)', case_sensitive: false}}
    - {{kind: python, function: lfs.py:short_comment}}
    - {{kind: python, function: lfs.py:shouting}}
  model: {{model: majority}}
"""


def test_chunks_on_a_local_cluster_give_the_single_process_votes(tmp_path, shared_data):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    shutil.copy(YOUTUBE_EXAMPLE / "lfs.py", tmp_path / "lfs.py")  # Python LFs travel to the workers by value
    text = CONFIG.format(data=shared_data / "wrench_youtube")
    (tmp_path / "single.yaml").write_text(text)
    (tmp_path / "dask.yaml").write_text("dask: {n_workers: 2, chunk_rows: 500}\n" + text)
    summaries = {}
    for name in ("single", "dask"):
        ingest_flow(str(tmp_path / f"{name}.yaml"), db=str(tmp_path / f"{name}.duckdb"))
        summaries[name] = label_flow(str(tmp_path / f"{name}.yaml"), db=str(tmp_path / f"{name}.duckdb"))
    votes = {}
    for name in ("single", "dask"):
        con = connect(tmp_path / f"{name}.duckdb", read_only=True)
        votes[name] = con.execute("SELECT item_id, lf, vote FROM votes ORDER BY ALL").fetchall()
        con.close()
    assert len(votes["single"]) > 1000 and votes["dask"] == votes["single"]
    assert summaries["dask"]["evaluated"] == summaries["single"]["evaluated"]
    with get_client(sync_client=True) as client:
        chunks = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="thresher-chunk")))
    assert len([c for c in chunks if c.state and c.state.is_completed()]) >= 4  # 1,956 items in chunks of 500


def test_embeddings_are_encoded_in_chunks_on_the_cluster(tmp_path, shared_data):
    """detect with minilm-static features: the vectors and the flags equal the single-process run's."""
    import numpy as np

    from flows import detect_flow

    text = CONFIG.format(data=shared_data / "wrench_youtube").replace(
        "  model: {model: majority}\n", "  model: {model: majority}\ndetect:\n  features: {encoder: minilm-static}\n  n_folds: 3\n")
    shutil.copy(YOUTUBE_EXAMPLE / "lfs.py", tmp_path / "lfs.py")
    (tmp_path / "single.yaml").write_text(text)
    (tmp_path / "dask.yaml").write_text("dask: {n_workers: 2, chunk_rows: 600}\n" + text)
    results = {}
    for name in ("single", "dask"):
        db = str(tmp_path / f"{name}.duckdb")
        ingest_flow(str(tmp_path / f"{name}.yaml"), db=db)
        label_flow(str(tmp_path / f"{name}.yaml"), db=db)
        detect_flow(str(tmp_path / f"{name}.yaml"), db=db)
        con = connect(db, read_only=True)
        vectors = con.execute("SELECT item_id, vector FROM embeddings ORDER BY item_id").fetchall()
        flags = con.execute("SELECT item_id, is_issue, round(score, 6) FROM noise_scores ORDER BY item_id").fetchall()
        con.close()
        results[name] = (vectors, flags)
    (single_vectors, single_flags), (dask_vectors, dask_flags) = results["single"], results["dask"]
    assert [i for i, _ in single_vectors] == [i for i, _ in dask_vectors] and len(single_vectors) > 1000
    np.testing.assert_allclose(np.array([v for _, v in dask_vectors]), np.array([v for _, v in single_vectors]),
                               atol=1e-6)
    assert dask_flags == single_flags
