"""Prompts answered in chunks (labeling.llm.chunked), against the real fake server on 127.0.0.1.

The chunks run one after another in this process here (a plain map); tests/flows/test_dask.py runs
them on a Dask LocalCluster. Either way each distinct prompt is sent once, the votes equal a
single-process run's, and answers spooled by a killed run are stored, not asked again.
"""

from __future__ import annotations

import pytest

from thresher.core.chunking import Chunking
from thresher.labeling.llm.apply import apply_prompted_lfs, plan_prompts
from thresher.labeling.llm.factory import build_backend
from thresher.labeling.llm.backend import Budget, LLMBackendError
from thresher.labeling.llm.chunked import Spool, answer_chunk, spool_directory
from thresher.storage.schema import connect
from tests.labeling.test_llm import SUBSCRIBE, config, distinct_texts, prompted_run, youtube_test  # noqa: F401

SONG = {**SUBSCRIBE, "name": "mentions_song", "template": "{text}\n\nIs this comment about the song?"}


def in_process(function, arguments):
    return [function(*args) for args in arguments]


def chunked_run(con, cfg, *, slots: int = 3, rows: int = 10**6, run_id: str = "r", budget: Budget | None = None):
    chunking = Chunking(in_process, rows=rows, slots=slots)
    return apply_prompted_lfs(con, cfg.build_prompted_lfs(), build_backend(cfg.llm), through_seq=10**9,
                              run_id=run_id, budget=budget, chunking=chunking)


@pytest.fixture
def server():
    from thresher.testing.openai_server import OpenAIServer, yes_if

    with OpenAIServer(yes_if("subscribe", "song")) as running:
        yield running


def test_chunks_send_each_prompt_once_and_vote_like_one_process(youtube_test, server, tmp_path, shared_data):
    from thresher.storage.ingest import IngestConfig, SourceConfig, ingest

    cfg = config(server, SUBSCRIBE, SONG)
    run = chunked_run(youtube_test, cfg, slots=3)
    distinct = 2 * len(distinct_texts(youtube_test))
    assert server.requests == run.sent == run.prompts == distinct and server.stats()["repeated_prompts"] == 0
    assert run.chunks == 3
    assert server.stats()["peak_in_flight"] <= 8 // 3  # the configured concurrency is shared by the chunks
    assert youtube_test.execute("SELECT count(*), count(DISTINCT key) FROM llm_calls").fetchall()[0] == (distinct, distinct)
    assert not spool_directory(youtube_test, None).exists()

    single = connect(tmp_path / "single.duckdb")
    ingest(single, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "test.json"), dataset="youtube", format="wrench")]))
    reference = prompted_run(single, cfg)
    single.close()
    assert run.votes.equals(reference.votes) and run.lfs == reference.lfs and run.votes.num_rows > 50
    again = chunked_run(youtube_test, cfg, run_id="r2")
    assert again.sent == 0 and again.votes.equals(run.votes)


def test_answers_spooled_by_a_killed_run_are_stored_and_never_asked_again(youtube_test, server):
    cfg = config(server)
    backend = build_backend(cfg.llm)
    plan = plan_prompts(youtube_test, cfg.build_prompted_lfs(), backend, through_seq=10**9)
    directory = spool_directory(youtube_test, None)
    directory.mkdir()
    # What a worker leaves when the driver is killed before storing: whole parts (and no database rows).
    answer_chunk(cfg.llm, plan.missing[:60], str(directory), "dead-00000", "dead", None)
    (directory / "dead-00000-000009.tmp").write_bytes(b"half a part")
    assert server.requests == 60 and youtube_test.execute("SELECT count(*) FROM llm_calls").fetchall()[0][0] == 0

    # Stored once even when a run stored them and died before deleting the parts.
    Spool(directory).store_new(youtube_test)
    run = prompted_run(youtube_test, cfg, run_id="next")
    assert server.requests == len(plan.requests) and server.stats()["repeated_prompts"] == 0
    assert (run.cached, run.sent) == (60, len(plan.requests) - 60)
    calls = dict(youtube_test.execute("SELECT run_id, count(*) FROM llm_calls GROUP BY run_id").fetchall())
    assert calls == {"dead": 60, "next": len(plan.requests) - 60}
    assert not directory.exists()


def test_a_chunk_dask_runs_again_skips_what_its_first_attempt_answered(youtube_test, server):
    cfg = config(server)
    backend = build_backend(cfg.llm)
    missing = plan_prompts(youtube_test, cfg.build_prompted_lfs(), backend, through_seq=10**9).missing
    directory = spool_directory(youtube_test, None)
    directory.mkdir()
    answer_chunk(cfg.llm, missing[:50], str(directory), "r-00000", "r", None)  # the worker died after 50
    answer_chunk(cfg.llm, missing[:80], str(directory), "r-00000", "r", None)  # the re-run
    assert server.requests == 80 and server.stats()["repeated_prompts"] == 0
    stored = Spool(directory).store_new(youtube_test)
    assert stored.num_rows == 80


def test_the_budget_is_shared_by_the_chunks(youtube_test, server):
    cfg = config(server)
    run = chunked_run(youtube_test, cfg, budget=Budget(max_calls=40))
    assert server.requests == run.sent == 40 and run.budget_stopped == "max_calls=40 reached"
    rest = chunked_run(youtube_test, cfg, run_id="r2")
    assert server.requests == len(distinct_texts(youtube_test)) and server.stats()["repeated_prompts"] == 0
    assert rest.sent == rest.prompts - 40

    tokens = chunked_run(youtube_test, config(server, max_tokens=3), run_id="r3", budget=Budget(max_tokens=500))
    assert tokens.budget_stopped.startswith("max_tokens=500") and 500 <= tokens.tokens < 500 + 3 * 8 * 200


def test_refused_credentials_in_a_chunk_stop_the_run(youtube_test, server):
    server.fault = lambda i, prompt: "401"
    with pytest.raises(LLMBackendError, match="HTTP 401: the API key was refused"):
        chunked_run(youtube_test, config(server))
    assert server.requests <= 8
