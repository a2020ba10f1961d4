"""Structured outputs: constrain generation to a JSON schema with xgrammar.

xgrammar is the grammar library vLLM itself uses, so both engines enforce the same language:
- the HF engine compiles the schema against the Hugging Face tokenizer and masks logits with
  `GrammarLogitsProcessor` (one `xgrammar.GrammarMatcher` per sequence);
- the vLLM engine passes the schema dict through (`vllm_structured_outputs(schema)` builds the
  object vLLM's SamplingParams expects).

Masking happens after the engine records the policy's log-probabilities (see engines/hf.py), so
the log-probabilities stay those of the unconstrained model.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Sequence

import torch
import transformers
import xgrammar


def schema_key(schema: dict[str, Any]) -> str:
    """The cache key of a schema. Key order is kept: xgrammar emits properties in schema order,
    so two schemas that differ only in order are different grammars."""
    return json.dumps(schema, separators=(",", ":"))


class SchemaCompiler:
    """Compiles JSON schemas for one tokenizer and keeps the results (compiling takes ~0.1-1 s)."""

    def __init__(
        self,
        tokenizer: Any,
        vocab_size: int | None = None,
        stop_token_ids: Sequence[int] | None = None,
        any_whitespace: bool = False,
    ) -> None:
        # The model's vocabulary can be larger than the tokenizer's (padding rows): the mask must
        # cover the model's logits, so take the model's size when given.
        info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer,
            vocab_size=vocab_size,
            stop_token_ids=list(stop_token_ids) if stop_token_ids else None,
        )
        self.tokenizer_info = info
        self._compiler = xgrammar.GrammarCompiler(info)
        # any_whitespace=False: only the minimal whitespace is legal, so a sampler cannot wander
        # into endless spaces and newlines between JSON tokens.
        self._any_whitespace = any_whitespace
        self._compiled: dict[str, xgrammar.CompiledGrammar] = {}
        self._lock = threading.Lock()

    def compile(self, schema: dict[str, Any]) -> xgrammar.CompiledGrammar:
        key = schema_key(schema)
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = self._compiler.compile_json_schema(
                    key, any_whitespace=self._any_whitespace, strict_mode=True
                )
            return self._compiled[key]

    def logits_processor(self, schema: dict[str, Any]) -> "GrammarLogitsProcessor":
        """A fresh processor for one `generate` call (it holds per-sequence matcher state)."""
        return GrammarLogitsProcessor(self.compile(schema))


class GrammarLogitsProcessor(transformers.LogitsProcessor):
    """Masks every token the grammar forbids, per sequence, inside `model.generate`.

    The first call sees the prompt; every later call first feeds each live sequence's previous
    sampled token to its matcher. A sequence whose matcher has terminated (it accepted a stop
    token) is finished in `generate` too, which pads it from then on."""

    def __init__(self, compiled: xgrammar.CompiledGrammar) -> None:
        self._compiled = compiled
        self._vocab_size = compiled.tokenizer_info.vocab_size
        self._matchers: list[xgrammar.GrammarMatcher] = []
        self._bitmask: torch.Tensor | None = None
        self._started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch = input_ids.shape[0]
        if not self._matchers:
            self._matchers = [xgrammar.GrammarMatcher(self._compiled) for _ in range(batch)]
            self._bitmask = xgrammar.allocate_token_bitmask(batch, self._vocab_size)
        elif batch != len(self._matchers):
            raise RuntimeError(f"batch changed from {len(self._matchers)} to {batch} inside one generate call")
        assert self._bitmask is not None
        if self._started:
            last_tokens = input_ids[:, -1].tolist()
            for matcher, token in zip(self._matchers, last_tokens):
                if not matcher.is_terminated() and not matcher.accept_token(token):
                    raise RuntimeError(f"the grammar rejected token {token} it had allowed")
        self._started = True
        for row, matcher in enumerate(self._matchers):
            if not matcher.is_terminated():
                matcher.fill_next_token_bitmask(self._bitmask, row)
        masked = scores if scores.device.type in ("cpu", "cuda") else scores.cpu()
        xgrammar.apply_token_bitmask_inplace(masked, self._bitmask.to(masked.device), vocab_size=self._vocab_size)
        return masked.to(scores.device)


def vllm_structured_outputs(schema: dict[str, Any]) -> Any:
    """The object vLLM's SamplingParams takes for a JSON schema, whichever vLLM is installed:
    `structured_outputs=StructuredOutputsParams(json=...)` (newer) or
    `guided_decoding=GuidedDecodingParams(json=...)` (older). Returns (keyword, value)."""
    try:
        from vllm.sampling_params import StructuredOutputsParams  # type: ignore[attr-defined]

        return "structured_outputs", StructuredOutputsParams(json=schema)
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams  # type: ignore[attr-defined]

        return "guided_decoding", GuidedDecodingParams(json=schema)
