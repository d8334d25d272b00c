"""A local causal LM with Hugging Face ``transformers`` (weights on disk, greedy decoding).

For users who have a model directory and no server. Prompts are batched (left padding); the
tokenizer's chat template is used when it has one, else the plain prompt as with ``completions``.
Nothing is ever downloaded: the model loads with ``local_files_only``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from thresher.labeling.llm.backend import Backend, Budget, LLMBackendError, Prefix, Request, Result
from thresher.labeling.llm.config import TransformersBackendConfig
from thresher.labeling.llm.prompt import PromptedLF


class TransformersBackend(Backend):
    """Greedy generation of at most ``max_tokens`` new tokens per prompt."""

    kind = "transformers"

    def __init__(self, config: TransformersBackendConfig) -> None:
        self.config = config
        self.model = Path(config.model_path).name
        self._loaded: tuple[Any, Any] | None = None

    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model, "max_tokens": self.config.max_tokens}

    def prefix(self, lf: PromptedLF) -> Prefix:
        return Prefix.of(self.identity(), {"system": lf.system, "examples": [list(e) for e in lf.few_shot()]})

    def variable(self, lf: PromptedLF, values: dict[str, Any]) -> str:
        return lf.render(values)

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            path = Path(self.config.model_path)
            if not path.is_dir():
                raise LLMBackendError(f"transformers backend: model_path '{path}' is not a directory of weights.")
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, padding_side="left")
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            from thresher.core.device import resolve_device

            self._device = resolve_device(self.config.device)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).to(self._device).eval()
            self._loaded = (tokenizer, model)
        return self._loaded

    def text(self, request: Request, tokenizer: Any) -> str:
        """The prompt as the model reads it."""
        system, examples = request.prefix.payload["system"], request.prefix.payload["examples"]
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": system}] if system else []
            for prompt, answer in examples:
                messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            messages.append({"role": "user", "content": request.variable})
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        parts = ([system] if system else []) + [f"{p} {a}" for p, a in examples] + [request.variable]
        return "\n\n".join(parts)

    async def stream(self, requests: Sequence[Request], budget: Budget) -> AsyncIterator[list[Result]]:
        import torch

        tokenizer, model = self._load()
        size = self.config.batch_size
        for start in range(0, len(requests), size):
            chunk = [r for r in requests[start:start + size] if budget.try_start()]
            if not chunk:
                return
            started = time.perf_counter()
            inputs = tokenizer([self.text(r, tokenizer) for r in chunk], return_tensors="pt", padding=True)
            inputs = {k: v.to(self._device) for k, v in inputs.items()}
            with torch.inference_mode():
                output = model.generate(**inputs, max_new_tokens=self.config.max_tokens, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id)
            width = inputs["input_ids"].shape[1]
            answers = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
            prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
            elapsed = (time.perf_counter() - started) * 1e3 / len(chunk)
            results = []
            for request, answer, n_prompt, row in zip(chunk, answers, prompt_tokens, output[:, width:]):
                generated = int((row != tokenizer.pad_token_id).sum())
                budget.spend(int(n_prompt) + generated)
                results.append(Result(request.key, answer.strip(), latency_ms=elapsed, prompt_tokens=int(n_prompt),
                                      completion_tokens=generated))
            yield results
            if budget.stopped:
                return
