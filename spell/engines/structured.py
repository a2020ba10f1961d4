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
    """Compiles JSON schemas and EBNF grammars for one tokenizer and keeps the results (compiling
    takes ~0.1-1 s)."""

    MAX_CACHED = 512

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

    def compile_grammar(self, ebnf: str) -> xgrammar.CompiledGrammar:
        """An xgrammar EBNF grammar (root rule `root`), compiled once per text."""
        key = "ebnf:" + ebnf
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = self._compiler.compile_grammar(ebnf)
                # Grounded grammars are built per prompt: keep the cache from growing without end.
                if len(self._compiled) > self.MAX_CACHED:
                    self._compiled.pop(next(iter(self._compiled)))
            return self._compiled[key]

    def logits_processor(self, schema: dict[str, Any]) -> "GrammarLogitsProcessor":
        """A fresh processor for one `generate` call (it holds per-sequence matcher state)."""
        return GrammarLogitsProcessor(self.compile(schema))

    def rows_processor(self, constraints: Sequence[dict[str, Any] | str | None]) -> "GrammarLogitsProcessor":
        """A processor with one constraint per row: a JSON schema (dict), an EBNF grammar (str)
        or None (that row is free)."""
        compiled = [
            None if c is None else self.compile_grammar(c) if isinstance(c, str) else self.compile(c) for c in constraints
        ]
        return GrammarLogitsProcessor(compiled)


class GrammarLogitsProcessor(transformers.LogitsProcessor):
    """Masks every token the grammar forbids, per sequence, inside `model.generate`.

    `compiled` is one grammar for every row, or a list with one grammar (or None: a free row) per
    row. The first call sees the prompt; every later call first feeds each live sequence's previous
    sampled token to its matcher. A sequence whose matcher has terminated (it accepted a stop
    token) is finished in `generate` too, which pads it from then on.

    It also keeps, per row and step, how many tokens the grammar allowed and the text the grammar
    forces next whatever the tokenization (xgrammar's jump-forward string): `forced_flags` turns
    them into "this sampled token was forced" (a literal such as "Evidence: " can be spelt with
    several tokenizations, so counting allowed tokens alone would miss it)."""

    def __init__(self, compiled: xgrammar.CompiledGrammar | Sequence[xgrammar.CompiledGrammar | None]) -> None:
        self._compiled = compiled
        self._matchers: list[xgrammar.GrammarMatcher | None] = []
        self._bitmask: torch.Tensor | None = None
        self._vocab: list[bytes] = []
        self._vocab_size = 0
        self._started = False
        self._steps: list[list[tuple[int, bytes]]] = []  # per row: (allowed tokens, forced text)

    def _build(self, batch: int) -> None:
        grammars = list(self._compiled) if isinstance(self._compiled, (list, tuple)) else [self._compiled] * batch
        if len(grammars) != batch:
            raise RuntimeError(f"{len(grammars)} grammars for a batch of {batch}")
        first = next((g for g in grammars if g is not None), None)
        if first is None:
            raise RuntimeError("no grammar for any row")
        info = first.tokenizer_info
        self._vocab_size = info.vocab_size
        self._vocab = list(info.decoded_vocab)
        self._matchers = [None if g is None else xgrammar.GrammarMatcher(g) for g in grammars]
        self._bitmask = xgrammar.allocate_token_bitmask(batch, self._vocab_size)
        self._steps = [[] for _ in range(batch)]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch = input_ids.shape[0]
        if not self._matchers:
            self._build(batch)
        elif batch != len(self._matchers):
            raise RuntimeError(f"batch changed from {len(self._matchers)} to {batch} inside one generate call")
        assert self._bitmask is not None
        if self._started:
            last_tokens = input_ids[:, -1].tolist()
            for matcher, token in zip(self._matchers, last_tokens):
                if matcher is not None and not matcher.is_terminated() and not matcher.accept_token(token):
                    raise RuntimeError(f"the grammar rejected token {token} it had allowed")
        self._started = True
        self._bitmask.fill_(-1)  # all allowed: rows without a grammar, or finished, stay free
        live = []
        for row, matcher in enumerate(self._matchers):
            if matcher is not None and not matcher.is_terminated():
                matcher.fill_next_token_bitmask(self._bitmask, row)
                live.append(row)
        masked = scores if scores.device.type in ("cpu", "cuda") else scores.cpu()
        xgrammar.apply_token_bitmask_inplace(masked, self._bitmask.to(masked.device), vocab_size=self._vocab_size)
        allowed = torch.isfinite(masked[:, : self._vocab_size]).sum(dim=-1).tolist()
        for row in range(batch):
            matcher = self._matchers[row]
            if row in live:
                self._steps[row].append((int(allowed[row]), matcher.find_jump_forward_string().encode()))
            else:
                self._steps[row].append((0, b""))
        return masked.to(scores.device)

    def forced_flags(self, row: int, tokens: Sequence[int]) -> list[bool] | None:
        """For each sampled token of `row`, whether the grammar left no choice: it was the only
        allowed token, or its text lies inside the text the grammar forced at that step. None for a
        free row."""
        if not self._matchers or self._matchers[row] is None:
            return None
        steps = self._steps[row]
        flags = []
        for t, token in enumerate(tokens):
            count, forced_text = steps[t] if t < len(steps) else (0, b"")
            piece = self._vocab[token] if 0 <= token < len(self._vocab) else b""
            flags.append(count == 1 or (bool(piece) and forced_text.startswith(piece)))
        return flags


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
