"""Typed configuration of the LLM backend that prompted LFs use (``labeling.llm`` in the YAML)."""

from __future__ import annotations

import os
from typing import Annotated, ClassVar, Literal, Union, get_args

from pydantic import Field, model_validator

from thresher.core.config import ConfigPath, StageConfig
from thresher.core.device import DeviceName


class BudgetConfig(StageConfig):
    """Per-run caps; when one is reached no new prompt is sent and the run ends with what is done."""

    max_calls: int | None = Field(None, ge=0)  # prompts sent per run at most (None: no cap)
    max_tokens: int | None = Field(None, ge=0)  # tokens (prompt + answer) per run at most (None: no cap)


MAX_RESPONSE_BYTES = 16 << 20  # the derived cap's ceiling: no answer of a few tokens needs more


class BackendConfig(StageConfig):
    """A backend's settings, and what ``build_backend`` needs to know of it: its ``backend`` tag (a
    Literal field), the ``Backend`` class it configures (``code``, ``module:Class``, imported only when
    built) and whether it computes through a stage's chunking (``chunked``)."""

    code: ClassVar[str]
    chunked: ClassVar[bool] = False


class OpenAIBackendConfig(BackendConfig):
    """Any OpenAI-compatible server: vLLM, Ollama, llama.cpp server, TGI, hosted APIs.

    The API key is read from the environment variable named by ``api_key_env`` when a run starts;
    it is never written to the database, the logs or the report. ``base_url`` is not part of the
    cache key, so moving the same model to another server keeps its cached answers.
    """

    code: ClassVar[str] = "thresher.labeling.llm.openai_http:OpenAIBackend"  # the Backend it configures
    backend: Literal["openai"]  # openai
    base_url: str = Field(min_length=1)  # e.g. http://127.0.0.1:8000/v1
    model: str = Field(min_length=1)  # the model name the server serves
    api_key_env: str | None = None  # e.g. OPENAI_API_KEY; None: no Authorization header
    endpoint: Literal["chat", "completions"] = "chat"  # chat (/v1/chat/completions) or completions (/v1/completions)
    concurrency: int = Field(16, ge=1, le=1024)  # requests in flight at once
    timeout: float = Field(60.0, gt=0)  # seconds per attempt
    max_tokens: int = Field(5, ge=1)  # answers are a word or two
    temperature: float = Field(0.0, ge=0)  # 0: greedy, the same answer each time
    max_retries: int = Field(4, ge=0, le=20)  # retries of a failed request (429, 5xx, timeouts), with backoff
    backoff: float = Field(0.5, ge=0)  # first retry delay in seconds; doubles each retry, with jitter
    max_backoff: float = Field(30.0, ge=0)  # seconds a retry waits at most (a longer Retry-After is capped to it)
    # A server's Retry-After longer than this ends that prompt's attempts (failed, asked next run): one
    # prompt then takes at most (max_retries + 1) * timeout + max_retries * max(max_backoff, max_retry_after).
    max_retry_after: float = Field(60.0, ge=0)
    # An answer body larger than this fails its prompt (asked again next run) without being read further:
    # None derives it from max_tokens (64 KiB + 1 KiB per token), at most MAX_RESPONSE_BYTES.
    max_response_bytes: int | None = Field(None, ge=1024)
    budget: BudgetConfig = BudgetConfig()  # per-run caps on calls and tokens

    @property
    def response_limit(self) -> int:
        """The most bytes of one answer body read (see ``max_response_bytes``)."""
        if self.max_response_bytes is not None:
            return self.max_response_bytes
        return min(MAX_RESPONSE_BYTES, 65_536 + 1024 * self.max_tokens)

    @model_validator(mode="after")
    def _check(self) -> "OpenAIBackendConfig":
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://. Got {self.base_url!r}.")
        return self

    def api_key(self) -> str | None:
        """The key from the environment, or a clear error naming the missing variable."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(f"api_key_env names {self.api_key_env!r}, but that environment variable is not set.")
        return key


class EmbeddedBackendConfig(BackendConfig):
    """The offline default: no server, no generation; see :mod:`thresher.labeling.llm.embedded`."""

    code: ClassVar[str] = "thresher.labeling.llm.embedded:EmbeddedBackend"
    chunked: ClassVar[bool] = True  # encodes through a stage's chunking (a Dask cluster)
    backend: Literal["embedded"]  # embedded
    encoder: Literal["minilm", "minilm-static"] = "minilm"  # minilm (the embedded all-MiniLM-L6-v2) | minilm-static
    margin: float = Field(0.1, ge=0, le=2)  # abstain unless the best statement wins by this cosine margin
    batch_size: int = Field(512, ge=1)  # texts encoded per batch
    device: DeviceName = "auto"  # where minilm encodes (the static encoder runs on the CPU)
    budget: BudgetConfig = BudgetConfig()  # per-run caps on calls and tokens

    @property
    def model(self) -> str:
        return self.encoder


class TransformersBackendConfig(BackendConfig):
    """A causal LM from a local directory, run greedily with Hugging Face ``transformers``."""

    code: ClassVar[str] = "thresher.labeling.llm.hf_local:TransformersBackend"
    backend: Literal["transformers"]  # transformers
    model_path: ConfigPath = Field(min_length=1)  # a local model directory (relative to the config file)
    max_tokens: int = Field(5, ge=1)  # tokens generated per answer at most
    batch_size: int = Field(8, ge=1)  # prompts per generate() call
    device: DeviceName = "auto"  # a GPU when torch sees one; cpu; cuda; cuda:N
    budget: BudgetConfig = BudgetConfig()  # per-run caps on calls and tokens

    @property
    def model(self) -> str:
        return self.model_path


# Every backend by its tag; adding one is its BackendConfig subclass here and its entry in this tuple.
BACKENDS: dict[str, type[BackendConfig]] = {get_args(cls.model_fields["backend"].annotation)[0]: cls for cls in (
    OpenAIBackendConfig, EmbeddedBackendConfig, TransformersBackendConfig)}
LLMConfig = Annotated[Union[tuple(BACKENDS.values())], Field(discriminator="backend")]  # type: ignore[valid-type]
