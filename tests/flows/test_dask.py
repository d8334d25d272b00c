"""LF application in chunks on a Dask LocalCluster (2 worker processes) through prefect-dask."""

from __future__ import annotations

import shutil

import pytest

from thresher.storage.schema import connect
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
    from thresher.flows import ingest_flow, label_flow  # prefect: imported by the tests that run flows
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


def _detect_single_and_dask(tmp_path, shared_data, detect: str, chunk_rows: int, queries: list[str]) -> dict:
    """Ingest, label and detect the YouTube config with ``detect`` settings, in one process and on a
    2-worker cluster; each run's summary and ``queries`` results."""
    from thresher.flows import ingest_flow, label_flow  # prefect: imported by the tests that run flows

    from thresher.flows import detect_flow

    text = CONFIG.format(data=shared_data / "wrench_youtube").replace(
        "  model: {model: majority}\n", "  model: {model: majority}\ndetect:\n" + detect)
    shutil.copy(YOUTUBE_EXAMPLE / "lfs.py", tmp_path / "lfs.py")
    (tmp_path / "single.yaml").write_text(text)
    (tmp_path / "dask.yaml").write_text(f"dask: {{n_workers: 2, chunk_rows: {chunk_rows}}}\n" + text)
    results = {}
    for name in ("single", "dask"):
        db = str(tmp_path / f"{name}.duckdb")
        ingest_flow(str(tmp_path / f"{name}.yaml"), db=db)
        label_flow(str(tmp_path / f"{name}.yaml"), db=db)
        summary = detect_flow(str(tmp_path / f"{name}.yaml"), db=db)
        con = connect(db, read_only=True)
        results[name] = (summary, [con.execute(query).fetchall() for query in queries])
        con.close()
    return results


def test_embeddings_are_encoded_in_chunks_on_the_cluster(tmp_path, shared_data):
    """detect with minilm-static features: the vectors and the flags equal the single-process run's."""
    import numpy as np

    results = _detect_single_and_dask(tmp_path, shared_data, "  features: {encoder: minilm-static}\n  n_folds: 3\n", 600, [
        "SELECT item_id, vector FROM embeddings ORDER BY item_id",
        "SELECT item_id, is_issue, round(score, 6) FROM noise_scores ORDER BY item_id"])
    (_, (single_vectors, single_flags)), (_, (dask_vectors, dask_flags)) = results["single"], results["dask"]
    assert [i for i, _ in single_vectors] == [i for i, _ in dask_vectors] and len(single_vectors) > 1000
    np.testing.assert_allclose(np.array([v for _, v in dask_vectors]), np.array([v for _, v in single_vectors]),
                               atol=1e-6)
    assert dask_flags == single_flags


def test_prompts_to_an_openai_server_are_answered_in_chunks_on_the_cluster(tmp_path, shared_data, monkeypatch):
    """Workers read the API key from their own environment, send each distinct prompt once, share the
    configured concurrency, and spool answers that only the driver stores; votes equal one process's."""
    from thresher.flows import ingest_flow, label_flow  # prefect: imported by the tests that run flows

    from thresher.testing.openai_server import OpenAIServer, yes_if

    monkeypatch.setenv("THRESHER_DASK_TEST_KEY", "sk-dask-test")  # before the cluster's workers start
    with OpenAIServer(yes_if("subscribe", "check"), latency=0.01) as server:
        text = f"""
classes: [HAM, SPAM]
sources:
  - {{path: "{shared_data}/wrench_youtube/test.json", dataset: youtube, format: wrench}}
labeling:
  lfs:
    - {{kind: prompt, name: subscribe, template: "{{text}}\\n\\nAsks to subscribe?", answers: {{yes: SPAM, no: abstain}}}}
    - {{kind: prompt, name: check, template: "{{text}}\\n\\nAsks to check something out?", answers: {{yes: SPAM, no: HAM}}}}
  llm: {{backend: openai, base_url: "{server.base_url}", model: fake, api_key_env: THRESHER_DASK_TEST_KEY, concurrency: 8}}
  model: {{model: majority}}
"""
        (tmp_path / "single.yaml").write_text(text)
        (tmp_path / "dask.yaml").write_text("dask: {n_workers: 2, chunk_rows: 100}\n" + text)
        votes, summaries, requests = {}, {}, {}
        for name in ("single", "dask"):
            server.reset()
            db = str(tmp_path / f"{name}.duckdb")
            ingest_flow(str(tmp_path / f"{name}.yaml"), db=db)
            summaries[name] = label_flow(str(tmp_path / f"{name}.yaml"), db=db)
            requests[name] = server.stats()
            con = connect(db, read_only=True)
            votes[name] = con.execute("SELECT item_id, lf, vote FROM votes ORDER BY ALL").fetchall()
            calls = con.execute("SELECT count(*), count(DISTINCT key) FROM llm_calls").fetchall()[0]
            con.close()
            assert calls == (requests[name]["requests"],) * 2
    distinct = summaries["single"]["llm"]["prompts"]
    assert requests["dask"]["requests"] == summaries["dask"]["llm"]["sent"] == distinct and distinct > 300
    assert (summaries["single"]["llm"]["chunks"], summaries["dask"]["llm"]["chunks"]) == (0, -(-distinct // 100))
    assert requests["dask"]["repeated_prompts"] == 0 and requests["dask"]["peak_in_flight"] <= 8
    assert server.authorization == {"Bearer sk-dask-test"}
    assert votes["dask"] == votes["single"] and len(votes["single"]) > 250
    assert summaries["dask"]["llm"]["lfs"] == summaries["single"]["llm"]["lfs"]
    assert not list(tmp_path.glob("*.llm-spool"))


def test_streamed_detect_on_the_cluster_flags_what_one_process_flags(tmp_path, shared_data):
    """The streamed detect path (hashed TF-IDF parts, fold models, chunk scoring) as Prefect tasks on
    a 2-worker LocalCluster: the same scores and flags as in one process."""
    results = _detect_single_and_dask(
        tmp_path, shared_data, "  n_folds: 3\n  stream_above: 0\n  train_rows: 1000\n"
        "  detectors: [confident_learning, small_loss]\n", 500,
        ["SELECT detector, item_id, is_issue, score FROM noise_scores ORDER BY ALL"])
    for summary, _ in results.values():
        assert (summary["features"]["kind"], summary["features"]["train_rows"]) == ("hashed tf-idf, streamed", 1000)
    single, dask = results["single"][1][0], results["dask"][1][0]
    assert len(single) > 2000 and any(flag for _, _, flag, _ in single)
    assert dask == single


def test_reweight_trains_on_a_cluster_worker_and_weighs_what_one_process_weighs(tmp_path, shared_data):
    """STORM's training (sequential: one model, step by step) runs whole as one Prefect task on a
    2-worker LocalCluster (with this process's torch threads): the same weights as in one process."""
    from thresher.flows import ingest_flow, label_flow  # prefect: imported by the tests that run flows
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    from thresher.flows import reweight_flow

    text = CONFIG.format(data=shared_data / "wrench_youtube") + (
        "reweight: {strategy: storm, epochs: 2}\n")
    shutil.copy(YOUTUBE_EXAMPLE / "lfs.py", tmp_path / "lfs.py")
    (tmp_path / "single.yaml").write_text(text)
    (tmp_path / "dask.yaml").write_text("dask: {n_workers: 2, chunk_rows: 600}\n" + text)
    def chunks() -> int:
        with get_client(sync_client=True) as client:
            return len(client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="thresher-chunk"))))

    weights, summaries, tasks = {}, {}, {}
    for name in ("single", "dask"):
        db = str(tmp_path / f"{name}.duckdb")
        ingest_flow(str(tmp_path / f"{name}.yaml"), db=db)
        label_flow(str(tmp_path / f"{name}.yaml"), db=db)
        before = chunks()
        summaries[name] = reweight_flow(str(tmp_path / f"{name}.yaml"), db=db)
        tasks[name] = chunks() - before
        con = connect(db, read_only=True)
        weights[name] = con.execute("SELECT item_id, weight, flagged FROM weights ORDER BY item_id").fetchall()
        con.close()
    assert len(weights["single"]) > 1000 and weights["dask"] == weights["single"]
    untimed = {name: [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in summary["epochs"]]
               for name, summary in summaries.items()}
    assert untimed["dask"] == untimed["single"] and len(untimed["single"]) == 2
    assert tasks == {"single": 0, "dask": 1}  # the training, whole
