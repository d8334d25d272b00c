"""Run prompted LFs over the items: every distinct prompt answered once, ever.

1. Render each LF's prompt for each item and hash it into a cache key (backend, model, decoding
   parameters and the rendered prompt); identical prompts, from any LF, share one key.
2. Look the distinct keys up in ``llm_cache``; send only the missing ones, within the run's budget.
3. Store each answer in ``llm_cache`` (and each call in ``llm_calls``) as it arrives, one short
   transaction per group of answers, so a crash loses at most the prompts in flight.
4. Verbalise: answers become votes. Failed or unsent prompts are abstains for this run and are
   asked again by the next one (errors are never cached).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from thresher.storage.connection import registered

from thresher.labeling.matrix import VOTES_SCHEMA
from thresher.core.chunking import Chunking
from thresher.labeling.apply.python import iter_rows
from thresher.labeling.lf.base import ABSTAIN
from thresher.labeling.llm.backend import Backend, Budget, Request
from thresher.labeling.llm.chunked import Spool, send_in_chunks, spool_directory
from thresher.labeling.llm.prompt import PromptedLF
from thresher.labeling.llm.store import answers_table, store_answers
from thresher.core.progress import ProgressCounter

logger = logging.getLogger(__name__)


@dataclass
class PromptPlan:
    """The prompts a run needs: per-LF keys in item order, and each distinct request."""

    item_ids: list[str]
    keys: dict[str, list[str]]  # lf -> key per item
    requests: dict[str, Request]  # distinct key -> request (the first LF that asked it)
    cached: dict[str, str] = field(default_factory=dict)  # key -> response, from llm_cache

    @property
    def missing(self) -> list[Request]:
        return [r for key, r in self.requests.items() if key not in self.cached]


def plan_prompts(
    con: duckdb.DuckDBPyConnection, lfs: list[PromptedLF], backend: Backend, *, through_seq: int
) -> PromptPlan:
    """Render every LF's prompt for every item up to ``through_seq`` and look the keys up."""
    prefixes = {lf.name: backend.prefix(lf) for lf in lfs}
    item_ids: list[str] = []
    keys: dict[str, list[str]] = {lf.name: [] for lf in lfs}
    requests: dict[str, Request] = {}
    for row in iter_rows(con, where=f"item_seq <= {int(through_seq)}", batch_size=8192):
        values = vars(row)
        item_ids.append(row.item_id)
        for lf in lfs:
            prefix = prefixes[lf.name]
            variable = backend.variable(lf, values)
            key = prefix.key(variable)
            keys[lf.name].append(key)
            if key not in requests:
                requests[key] = Request(key, lf.name, prefix, variable)
    plan = PromptPlan(item_ids, keys, requests)
    if requests:
        with registered(con, _prompt_keys=pa.table({"key": pa.array(list(requests), pa.string())})):
            found = con.sql("SELECT c.key, c.response FROM llm_cache c JOIN _prompt_keys USING (key)").fetchall()
        plan.cached = dict(found)
    return plan


@dataclass
class PromptRun:
    """What a prompted-LF pass did: votes, and counts for the summary."""

    votes: pa.Table
    lfs: dict[str, dict[str, Any]]
    prompts: int  # distinct prompts the run needed
    cached: int  # of which already answered before the run
    sent: int  # sent in this run (answered or failed)
    failed: int
    tokens: int
    budget_stopped: str | None
    errors: list[str]  # the first few distinct errors
    chunks: int = 0  # chunks the prompts were sent in elsewhere (0: sent from this process)

    def as_dict(self) -> dict[str, Any]:
        return {"prompts": self.prompts, "cached": self.cached, "sent": self.sent, "failed": self.failed,
                "tokens": self.tokens, "budget_stopped": self.budget_stopped, "errors": self.errors, "chunks": self.chunks,
                "lfs": self.lfs}


def apply_prompted_lfs(
    con: duckdb.DuckDBPyConnection, lfs: list[PromptedLF], backend: Backend, *, through_seq: int, run_id: str,
    budget: Budget | None = None, progress: bool = False, chunking: Chunking | None = None,
) -> PromptRun:
    """Vote with every prompted LF on the items up to ``through_seq`` (see the module docstring).

    With ``chunking``, the prompts are answered in chunks elsewhere (see :mod:`thresher.labeling.llm.chunked`),
    unless the backend chunks its own work (the embedded one encodes in chunks).
    """
    budget = budget or Budget()
    spool = Spool(spool_directory(con, chunking.directory if chunking else None))
    leftover = spool.store_new(con)  # answers a killed chunked run spooled but never stored
    if leftover is not None:
        logger.info("Stored %d answers spooled by an interrupted run", leftover.num_rows)
    plan = plan_prompts(con, lfs, backend, through_seq=through_seq)
    missing = plan.missing
    responses = dict(plan.cached)
    failed: dict[str, str] = {}
    sent = chunks = 0

    def arrived(answers: pa.Table, bar: ProgressCounter) -> None:
        """Note a stored :func:`answers_table` (sent prompts) for the votes and the summary."""
        nonlocal sent
        for key, response, error in zip(*(answers.column(c).to_pylist() for c in ("key", "response", "error"))):
            if response is None:
                failed[key] = error or "unknown error"
            else:
                responses[key] = response
        sent += answers.num_rows
        bar.advance(answers.num_rows)

    async def drive(bar: ProgressCounter) -> None:
        # Each group is stored in a worker thread while requests go on; the answers that arrive
        # meanwhile form the next group, so a crash loses at most the prompts in flight plus the
        # answers of one store (a few ms).
        writer = con.cursor()
        async for results in backend.stream(missing, budget):
            answers = answers_table(backend, run_id, results, plan.requests)
            await asyncio.to_thread(store_answers, writer, answers)
            arrived(answers, bar)

    if missing:
        logger.info("Prompted LFs: %d distinct prompts, %d cached, %d to send", len(plan.requests),
                    len(plan.cached), len(missing))
        with ProgressCounter(description=f"LLM prompts ({backend.kind})", total=len(missing), enabled=progress) as bar:
            if chunking is not None and backend.answers_in_chunks:
                chunks = send_in_chunks(con, backend, missing, chunking=chunking, spool=spool, run_id=run_id,
                                        budget=budget, on_stored=lambda answers: arrived(answers, bar))
            else:
                asyncio.run(drive(bar))
    spool.clear()

    item_ids = np.array(plan.item_ids, dtype=object)
    columns: list[pa.Table] = []
    per_lf: dict[str, dict[str, Any]] = {}
    for lf in lfs:
        tally: Tally = Tally()
        verdicts: dict[str, tuple[int, bool]] = {}
        votes = np.full(len(item_ids), ABSTAIN, dtype=np.int32)
        for i, key in enumerate(plan.keys[lf.name]):
            response = responses.get(key)
            if response is None:
                tally["failed" if key in failed else "not_sent"] += 1
                continue
            verdict = verdicts.get(response)
            if verdict is None:
                verdict = verdicts[response] = lf.verbaliser(response)
            vote, matched = verdict
            votes[i] = vote
            tally["vote" if vote != ABSTAIN else ("abstain_answer" if matched else ("no_answer" if not response
                                                                                    else "unmatched"))] += 1
        keep = votes != ABSTAIN
        columns.append(pa.table({"item_id": pa.array(item_ids[keep].tolist(), pa.string()),
                                 "lf": pa.array([lf.name] * int(keep.sum()), pa.string()),
                                 "vote": pa.array(votes[keep], pa.int32())}, schema=VOTES_SCHEMA))
        per_lf[lf.name] = {"items": len(item_ids), **{k: tally.get(k, 0) for k in
                                                       ("vote", "abstain_answer", "no_answer", "unmatched",
                                                        "failed", "not_sent")}}
    votes_table = pa.concat_tables(columns) if columns else VOTES_SCHEMA.empty_table()
    tokens = budget.tokens
    errors = sorted(set(failed.values()))[:5]
    if failed:
        logger.warning("%d prompts failed after retries (abstained, asked again next run), e.g. %s", len(failed), errors)
    if budget.stopped:
        logger.warning("LLM budget stopped the run: %s; %d prompts left for the next run", budget.stopped,
                       len(missing) - sent)
    return PromptRun(votes=votes_table.sort_by([("item_id", "ascending"), ("lf", "ascending")]), lfs=per_lf,
                     prompts=len(plan.requests), cached=len(plan.cached), sent=sent, failed=len(failed),
                     tokens=tokens, budget_stopped=budget.stopped, errors=errors, chunks=chunks)


def dry_run(
    con: duckdb.DuckDBPyConnection, lfs: list[PromptedLF], backend: Backend, *, through_seq: int
) -> dict[str, Any]:
    """How many prompts and tokens a run would send, and how many are cached; nothing is sent or written."""
    plan = plan_prompts(con, lfs, backend, through_seq=through_seq)
    missing = plan.missing
    per_lf: dict[str, dict[str, int]] = {}
    for lf in lfs:
        keys = set(plan.keys[lf.name])
        cached = sum(1 for k in keys if k in plan.cached)
        per_lf[lf.name] = {"items": len(plan.item_ids), "distinct_prompts": len(keys), "cached": cached,
                           "to_send": len(keys) - cached}
    return {"items": len(plan.item_ids), "distinct_prompts": len(plan.requests), "cached": len(plan.cached),
            "to_send": len(missing), "estimated_tokens": sum(backend.estimate(r) for r in missing), "lfs": per_lf}
