"""The rows a sent prompt leaves: its answer in ``llm_cache`` (when it has one) and the call in ``llm_calls``."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from thresher.labeling.llm.backend import Backend, Request, Result
from thresher.storage.connection import registered, transaction

ANSWERS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("key", pa.string()), ("lf", pa.string()), ("backend", pa.string()),
    ("model", pa.string()), ("prompt", pa.string()), ("response", pa.string()), ("attempts", pa.int32()),
    ("http_status", pa.int32()), ("latency_ms", pa.float64()), ("prompt_tokens", pa.int32()),
    ("completion_tokens", pa.int32()), ("error", pa.string()),
])


def answers_table(backend: Backend, run_id: str, results: list[Result], requests: dict[str, Request]) -> pa.Table:
    """One row per prompt sent: what ``llm_cache`` (answered rows) and ``llm_calls`` (every row) store."""
    n = len(results)
    return pa.table({
        "run_id": [run_id] * n,
        "key": [r.key for r in results],
        "lf": [requests[r.key].lf for r in results],
        "backend": [backend.kind] * n,
        "model": [backend.model] * n,
        "prompt": [backend.prompt_text(requests[r.key]) for r in results],
        "response": [r.response for r in results],
        "attempts": [r.attempts for r in results],
        "http_status": [r.http_status for r in results],
        "latency_ms": [r.latency_ms for r in results],
        "prompt_tokens": [r.prompt_tokens for r in results],
        "completion_tokens": [r.completion_tokens for r in results],
        "error": [r.error for r in results],
    }, schema=ANSWERS_SCHEMA)


def store_answers(con: duckdb.DuckDBPyConnection, answers: pa.Table, *, once: bool = False) -> None:
    """Write an :func:`answers_table` in one transaction. ``once`` skips calls already stored under the
    same run and key, for answers that may have been stored before (a spool part left by a crash)."""
    only_new = (" WHERE NOT EXISTS (SELECT 1 FROM llm_calls c WHERE c.run_id = a.run_id AND c.key = a.key)"
                if once else "")
    with transaction(con):
        with registered(con, _llm_answers=answers):
            con.execute("INSERT OR IGNORE INTO llm_cache (key, backend, model, prompt, response, prompt_tokens, "
                        "completion_tokens) SELECT key, backend, model, prompt, response, prompt_tokens, "
                        "completion_tokens FROM _llm_answers WHERE response IS NOT NULL")
            con.execute("INSERT INTO llm_calls (run_id, key, lf, status, attempts, http_status, latency_ms, "
                        "prompt_tokens, completion_tokens, error) SELECT run_id, key, lf, CASE WHEN response IS NULL "
                        "THEN 'error' ELSE 'ok' END, attempts, http_status, latency_ms, prompt_tokens, "
                        f"completion_tokens, error FROM _llm_answers a{only_new}")
