"""The embedded offline backend: answer by similarity with MiniLM, no server and no generation.

It is not a generative LLM and cannot follow instructions. For each prompted LF it embeds the
item's ``embed`` rendering (the item's text by default, not the question: measured on YouTube,
the question drowns the item in the embedding and the answers become coin flips) and each answer's
``statement``, a sentence that would be true of items deserving that answer, with the packaged
all-MiniLM-L6-v2 (or its static distillation). The answer whose statement is most similar wins if
it beats the runner-up by ``margin`` in cosine similarity; otherwise the response is empty, which
the verbaliser counts as an abstain. Items shared by several LFs are embedded once per run.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np

from thresher.core.chunking import Chunking
from thresher.labeling.llm.backend import Backend, Budget, LLMBackendError, Prefix, Request, Result
from thresher.labeling.llm.config import EmbeddedBackendConfig
from thresher.labeling.llm.prompt import PromptedLF


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class EmbeddedBackend(Backend):
    """Nearest answer statement in MiniLM space, abstaining below a cosine margin."""

    kind = "embedded"
    answers_in_chunks = False  # its encoder runs in chunks on the cluster instead (see encoder())

    def __init__(self, config: EmbeddedBackendConfig, *, chunking: Chunking | None = None) -> None:
        self.config = config
        self.chunking = chunking
        self.model = config.encoder
        self._encoder = None

    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.config.encoder, "margin": self.config.margin}

    def prefix(self, lf: PromptedLF) -> Prefix:
        if lf.statements is None:
            raise LLMBackendError(
                f"Prompted LF {lf.name!r} has no 'statements': the embedded backend answers by comparing the item "
                "with one statement per answer, e.g. statements: {yes: 'Subscribe to my channel.', no: 'I love this "
                "song.'}"
            )
        return Prefix.of(self.identity(), {"statements": dict(sorted(lf.statements.items()))})

    def variable(self, lf: PromptedLF, values: dict[str, Any]) -> str:
        return lf.render_embed(values)

    def encoder(self):
        if self._encoder is None:
            from thresher.features import SentenceEncoder, StaticEncoder

            self._encoder = SentenceEncoder(device=self.config.device) if self.config.encoder == "minilm" else StaticEncoder()
            if self.chunking is not None:
                from thresher.features.chunked import ChunkedEncoder

                self._encoder = ChunkedEncoder(self._encoder, self.chunking.map_chunks, self.chunking.rows)
        return self._encoder

    def estimate(self, request: Request) -> int:
        return 0  # no tokens are billed

    async def stream(self, requests: Sequence[Request], budget: Budget) -> AsyncIterator[list[Result]]:
        encoder = self.encoder()
        statement_vectors: dict[str, tuple[list[str], np.ndarray]] = {}
        by_text: dict[str, list[Request]] = {}
        for request in requests:  # the LFs that share an item share one encoding of its text
            by_text.setdefault(request.variable, []).append(request)
        texts = list(by_text)
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            chunk_texts = texts[start:start + size]
            chunk = []
            for text in chunk_texts:
                for request in by_text[text]:
                    if not budget.try_start():
                        break
                    chunk.append(request)
            if not chunk:
                return
            started = time.perf_counter()
            # A whole chunk per call lets the encoder batch texts of similar length together.
            text_vectors = _unit(encoder.encode(chunk_texts))
            text_index = {t: i for i, t in enumerate(chunk_texts)}
            results = []
            for request in chunk:
                statements = request.prefix.payload["statements"]
                cache_key = json.dumps(statements, sort_keys=True)
                if cache_key not in statement_vectors:
                    answers = list(statements)
                    statement_vectors[cache_key] = (answers, _unit(encoder.encode([statements[a] for a in answers])))
                answers, vectors = statement_vectors[cache_key]
                similarity = vectors @ text_vectors[text_index[request.variable]]
                best, second = np.argsort(-similarity)[:2]
                confident = similarity[best] - similarity[second] >= self.config.margin
                results.append(Result(request.key, answers[best] if confident else ""))
            elapsed = (time.perf_counter() - started) * 1e3 / len(chunk)
            for result in results:
                result.latency_ms = elapsed
            yield results
            if budget.stopped:
                return
