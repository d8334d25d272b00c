"""The small interface every LLM backend implements, and the objects that cross it.

A backend turns :class:`Request` objects into :class:`Result` objects, streamed back in groups as
they finish so the caller can store each answer at once. Whatever, besides the item, decides an
answer (backend kind, model, decoding parameters, system prompt, few-shot examples) is the
request's ``prefix``; the per-item part is ``variable``. The cache key hashes both.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from thresher.labeling.llm.prompt import PromptedLF


class LLMBackendError(RuntimeError):
    """The backend cannot answer at all (bad credentials, unknown model, missing weights)."""


@dataclass(frozen=True)
class Prefix:
    """The part of a prompt shared by every item of one LF, and its hash state."""

    payload: dict[str, Any]
    digest_input: bytes

    @classmethod
    def of(cls, identity: dict[str, Any], payload: dict[str, Any]) -> "Prefix":
        text = json.dumps({"backend": identity, "prefix": payload}, sort_keys=True, ensure_ascii=False)
        return cls(payload, text.encode())

    def key(self, variable: str) -> str:
        """The cache key of this prefix followed by one item's rendered text."""
        digest = hashlib.sha256(self.digest_input)
        digest.update(b"\x00")
        digest.update(variable.encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Request:
    key: str
    lf: str
    prefix: Prefix
    variable: str


@dataclass
class Result:
    """One prompt's outcome: ``response`` is None when every attempt failed (see ``error``)."""

    key: str
    response: str | None
    attempts: int = 1
    latency_ms: float = 0.0
    http_status: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None


class Budget:
    """Caps on prompts sent and tokens spent in one run; a request starts only while both hold.

    Tokens are the server's reported counts (estimated as characters / 4 where it reports none).
    Requests already in flight when the token cap is reached still finish and are kept, so a run
    can overshoot ``max_tokens`` by what the last ``concurrency`` requests used.
    """

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None) -> None:
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.calls = 0
        self.tokens = 0
        self.stopped: str | None = None

    def try_start(self) -> bool:
        if self.max_calls is not None and self.calls >= self.max_calls:
            self.stopped = f"max_calls={self.max_calls} reached"
        elif self.max_tokens is not None and self.tokens >= self.max_tokens:
            self.stopped = f"max_tokens={self.max_tokens} reached ({self.tokens} used)"
        if self.stopped:
            return False
        self.calls += 1
        return True

    def spend(self, tokens: int) -> None:
        self.tokens += tokens


def estimate_tokens(text: str) -> int:
    """A rough token count (characters / 4) for servers that report none, and for dry runs."""
    return max(1, len(text) // 4)


class Backend(ABC):
    """Answers prompts; ``stream`` yields results in groups as they complete."""

    kind: str
    model: str
    config: Any  # the backend's typed config: a worker rebuilds the backend from it (labeling.llm.chunked)
    answers_in_chunks = True  # with a cluster, prompts are answered in chunks there; False: it chunks its own work

    def check(self) -> None:
        """Fail early, before any work, when the backend cannot be used (e.g. an unset API key)."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Backend kind, model and decoding parameters: part of every cache key."""

    @abstractmethod
    def prefix(self, lf: PromptedLF) -> Prefix:
        """The shared part of ``lf``'s prompts."""

    @abstractmethod
    def variable(self, lf: PromptedLF, values: dict[str, Any]) -> str:
        """The per-item part of ``lf``'s prompt for one item."""

    @abstractmethod
    def stream(self, requests: Sequence[Request], budget: Budget) -> AsyncIterator[list[Result]]:
        """Answer ``requests`` (distinct keys), yielding groups of results as they finish."""

    def prompt_text(self, request: Request) -> str:
        """The rendered prompt as stored in the cache (JSON of what the backend receives)."""
        return json.dumps({**request.prefix.payload, "input": request.variable}, ensure_ascii=False)

    def estimate(self, request: Request) -> int:
        """Estimated tokens one request costs (prompt plus the answer's cap)."""
        return estimate_tokens(self.prompt_text(request))

    def close(self) -> None:
        """Release models or connections held between runs."""
