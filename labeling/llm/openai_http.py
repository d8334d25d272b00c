"""OpenAI-compatible HTTP backend: chat or text completions, async with a concurrency limit.

Retries are bounded, with exponential backoff and full jitter, for timeouts, dropped connections,
429 (``Retry-After`` is honoured up to ``max_retry_after``; a longer wait fails that prompt for this
run), 5xx and unreadable bodies. 401/403/404 mean the whole run would
fail the same way, so they stop it at once (:class:`LLMBackendError`); other 4xx fail that prompt.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp

from thresher.labeling.llm.backend import Backend, Budget, LLMBackendError, Prefix, Request, Result, estimate_tokens
from thresher.labeling.llm.config import OpenAIBackendConfig
from thresher.labeling.llm.prompt import PromptedLF

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
FATAL_STATUS = {401: "the API key was refused", 403: "access is forbidden", 404: "the endpoint or model does not exist"}


class _Fail(Exception):
    """An answer that retrying cannot fix (a 4xx other than 401/403/404/429)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(error)
        self.status = status


class _Retry(Exception):
    def __init__(self, error: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (None when absent or unreadable).

    >>> retry_after_seconds("2"), retry_after_seconds(None), retry_after_seconds("soon")
    (2.0, None, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass  # not a number of seconds: an HTTP date, then
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIBackend(Backend):
    """Chat (``/chat/completions``) or text (``/completions``) requests at temperature 0."""

    kind = "openai"

    def __init__(self, config: OpenAIBackendConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.model = config.model
        self._api_key: str | None = None
        self._rng = rng or random.Random()
        self.fatal: LLMBackendError | None = None

    @property
    def url(self) -> str:
        return self.config.base_url.rstrip("/") + ("/chat/completions" if self.config.endpoint == "chat" else "/completions")

    def check(self) -> None:
        self._api_key = self.config.api_key()  # a clear error, before any work, when the variable is unset

    def identity(self) -> dict[str, Any]:
        c = self.config
        return {"backend": self.kind, "model": c.model, "endpoint": c.endpoint,
                "temperature": c.temperature, "max_tokens": c.max_tokens}

    def prefix(self, lf: PromptedLF) -> Prefix:
        examples = [[prompt, answer] for prompt, answer in lf.few_shot()]
        return Prefix.of(self.identity(), {"system": lf.system, "examples": examples})

    def variable(self, lf: PromptedLF, values: dict[str, Any]) -> str:
        return lf.render(values)

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for one request."""
        c = self.config
        system, examples = request.prefix.payload["system"], request.prefix.payload["examples"]
        common = {"model": c.model, "temperature": c.temperature, "max_tokens": c.max_tokens}
        if c.endpoint == "chat":
            messages = [{"role": "system", "content": system}] if system else []
            for prompt, answer in examples:
                messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            messages.append({"role": "user", "content": request.variable})
            return {**common, "messages": messages}
        parts = [system] if system else []
        parts += [f"{prompt} {answer}" for prompt, answer in examples]
        parts.append(request.variable)
        return {**common, "prompt": "\n\n".join(parts)}

    def estimate(self, request: Request) -> int:
        body = self.body(request)
        text = "".join(m["content"] for m in body["messages"]) if "messages" in body else body["prompt"]
        return estimate_tokens(text) + self.config.max_tokens

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.config.max_backoff, self.config.backoff * 2 ** (attempt - 1))
        jittered = self._rng.uniform(0, backoff)
        return max(retry_after, jittered) if retry_after is not None else jittered

    async def _attempt(self, session: aiohttp.ClientSession, request: Request) -> tuple[str, int, dict[str, Any]]:
        try:
            async with session.post(self.url, json=self.body(request)) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                raw = await self._body(response, status)
        except asyncio.TimeoutError:
            raise _Retry(f"timeout after {self.config.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise _Retry(f"connection error: {type(exc).__name__}: {exc}") from None
        text = raw.decode("utf-8", "replace")
        if status in FATAL_STATUS:
            raise LLMBackendError(f"{self.config.base_url} answered HTTP {status}: {FATAL_STATUS[status]} "
                                  f"(model {self.model!r}). Server said: {text[:200]!r}")
        if status == 429:
            raise _Retry("HTTP 429 rate limited", status, retry_after_seconds(retry_after))
        if status >= 500:
            raise _Retry(f"HTTP {status}: {text[:200]!r}", status)
        if status != 200:
            raise _Fail(f"HTTP {status}: {text[:200]!r}", status)
        try:
            data = json.loads(text)
            choice = data["choices"][0]
            answer = choice["message"]["content"] if self.config.endpoint == "chat" else choice["text"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Retry(f"malformed response ({type(exc).__name__}): {text[:120]!r}", status) from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        answer = "" if answer is None else answer
        if not isinstance(answer, str):
            raise _Retry(f"malformed response (content is {type(answer).__name__}): {text[:120]!r}", status)
        # A JSON "\ud83d" escape with no partner (half an emoji) cannot be stored: it becomes U+FFFD,
        # as undecodable bytes do.
        return _LONE_SURROGATE.sub("\ufffd", answer), status, usage

    async def _body(self, response: aiohttp.ClientResponse, status: int) -> bytes:
        """The answer's body, read a chunk at a time and refused (the prompt fails, asked again next run)
        once past ``response_limit`` bytes: a server sending megabytes per prompt cannot fill memory."""
        limit = self.config.response_limit
        declared = response.content_length
        if declared is not None and declared > limit:
            raise _Fail(f"the answer is {declared:,} bytes, more than the {limit:,} bytes allowed for one answer "
                        "(max_response_bytes)", status)
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(65_536):
            size += len(chunk)
            if size > limit:
                raise _Fail(f"the answer ran past the {limit:,} bytes allowed for one answer (max_response_bytes)",
                            status)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _call(self, session: aiohttp.ClientSession, request: Request) -> Result:
        started = time.perf_counter()
        attempt, status, error = 0, None, None
        while True:
            attempt += 1
            try:
                text, status, usage = await self._attempt(session, request)
            except _Retry as retry:
                status, error = retry.status, str(retry)
                if attempt > self.config.max_retries:
                    break
                if retry.retry_after is not None and retry.retry_after > self.config.max_retry_after:
                    error = (f"{retry}: the server asked to wait {retry.retry_after:.0f} s, more than "
                             f"max_retry_after={self.config.max_retry_after:g} s; given up for this run")
                    break
                await asyncio.sleep(self._delay(attempt, retry.retry_after))
                continue
            except _Fail as fail:
                status, error = fail.status, str(fail)
                break
            return Result(request.key, text, attempts=attempt, latency_ms=(time.perf_counter() - started) * 1e3,
                          http_status=status, prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"))
        return Result(request.key, None, attempts=attempt, latency_ms=(time.perf_counter() - started) * 1e3,
                      http_status=status, error=error)

    async def stream(self, requests: Sequence[Request], budget: Budget) -> AsyncIterator[list[Result]]:
        c = self.config
        self.check()
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        queue: asyncio.Queue[Result | None] = asyncio.Queue()
        pending = iter(requests)
        stop = asyncio.Event()

        async def worker(session: aiohttp.ClientSession) -> None:
            for request in pending:  # one shared iterator: each request is taken by one worker
                if stop.is_set() or not budget.try_start():
                    return
                try:
                    result = await self._call(session, request)
                except LLMBackendError as exc:
                    self.fatal = self.fatal or exc
                    stop.set()
                    return
                used = (result.prompt_tokens or 0) + (result.completion_tokens or 0)
                if result.response is not None and not used:
                    used = self.estimate(request)
                budget.spend(used)
                queue.put_nowait(result)

        connector = aiohttp.TCPConnector(limit=c.concurrency, ssl=ssl.create_default_context())
        session = aiohttp.ClientSession(headers=headers, connector=connector,
                                        timeout=aiohttp.ClientTimeout(total=c.timeout))

        async def run_all() -> None:
            try:
                await asyncio.gather(*(worker(session) for _ in range(c.concurrency)))
            finally:
                queue.put_nowait(None)

        runner = asyncio.create_task(run_all())
        try:
            finished = False
            while not finished:
                group = [await queue.get()]
                while not queue.empty():
                    group.append(queue.get_nowait())
                finished = group[-1] is None
                results = [r for r in group if r is not None]
                if results:
                    yield results
            await runner
        finally:
            runner.cancel()
            await session.close()
        if self.fatal is not None:
            raise self.fatal
