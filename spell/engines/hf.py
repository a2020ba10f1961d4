"""Rollout engine on Hugging Face transformers (the CPU / single-GPU default).

Self-play asks for G completions of the same long prompt (a document set plus a role prompt), so
the expensive part is pre-filling that prompt. This engine pre-fills each prompt once into a
`DynamicCache`, repeats the cache G times (`batch_repeat_interleave`) and lets `generate` continue
from it: measured 4.1x faster than plain batched `generate` for 8 x 32 tokens after a 2K prompt
(ENVIRONMENT.md; bench/shared_prefix.py), with identical greedy outputs.

Log-probabilities: for every sampled token the engine records log softmax(logits / T) of the
model, T the sampling temperature (1 for greedy decoding): the tempered distribution the token was
drawn from, before top-p and any grammar mask. That is the quantity the trainer recomputes
(spell/trainers/logprobs.py with TrainerSettings.temperature), as verl and TRL do, so the two agree
up to floating point and the PPO ratio starts at 1.

A completion that stops keeps its stop token (EOS / <|im_end|>) as the last of `token_ids` (with
its log-probability: the policy chose to stop, and training should see that); `text` is decoded
without it and without special tokens, as vLLM does.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Sequence

import torch
import transformers
from transformers import DynamicCache, GenerationConfig

from spell.engines.base import Completion, EngineStats, ProgressCallback, SamplingParams, logprob_temperature
from spell.engines.sampling import NucleusSampler, row_generator
from spell.prompts import end_of_turn_id


class _LogprobRecorder(transformers.LogitsProcessor):
    """Records log p(sampled token) under the model's distribution at `temperature` (no top-p,
    no grammar mask).

    It must be the first processor: `generate` calls it with the raw logits of step t, and the
    token sampled at step t only shows up in `input_ids` at step t+1; so it keeps one step of
    log-probabilities ([batch, vocab]) and gathers the previous token each call. The last step is
    gathered by `finish` from the final sequences."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature
        self._pending: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._pending is not None:
            self.steps.append(self._gather(input_ids[:, -1]))
        logits = scores.float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        self._pending = torch.log_softmax(logits, dim=-1)
        return scores

    def _gather(self, tokens: torch.Tensor) -> torch.Tensor:
        assert self._pending is not None
        return self._pending.gather(-1, tokens.unsqueeze(-1).to(self._pending.device)).squeeze(-1).cpu()

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """[batch, new_len] log-probabilities, given the generated tokens."""
        if self._pending is not None and len(self.steps) < new_tokens.shape[1]:
            self.steps.append(self._gather(new_tokens[:, len(self.steps)]))
            self._pending = None
        if not self.steps:
            return torch.zeros(new_tokens.shape[0], 0)
        return torch.stack(self.steps, dim=1)


@dataclass(frozen=True)
class _Batch:
    prompt_indices: list[int]
    input_ids: torch.Tensor  # [prompts, max_len], left padded
    attention_mask: torch.Tensor


class HFEngine:
    """RolloutEngine over a transformers causal LM.

    `colocated=True` (the default) means this engine holds the very module the trainer updates,
    so after an optimizer step it already samples from the new weights and `sync_weights` does
    nothing. With `colocated=False` (a separate copy, e.g. on another device) `sync_weights` loads
    the given state dict."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        device: str | torch.device = "cpu",
        *,
        colocated: bool = True,
        share_prefix: bool = True,
        max_batch_sequences: int = 32,
        stop_token_ids: Sequence[int] | None = None,
        generation_context: Callable[[], ContextManager[Any]] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.colocated = colocated
        self.share_prefix = share_prefix
        self.max_batch_sequences = max_batch_sequences
        self.stop_token_ids = list(stop_token_ids) if stop_token_ids else _default_stop_ids(tokenizer)
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_token_ids[0]
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 1 << 30))
        self.stats = EngineStats()
        # Entered around every generate call: the trainer's (ZeRO-3 gathers its shards once).
        self._generation_context = generation_context or contextlib.nullcontext
        self._structured: Any = None
        # transformers >= 5.2x renamed `past_key_values` to `cache` (the old name warns).
        forward_params = inspect.signature(model.forward).parameters
        self._cache_keyword = "cache" if "cache" in forward_params else "past_key_values"
        if next(model.parameters()).device != self.device:
            model.to(self.device)

    # ------------------------------------------------------------------ RolloutEngine

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
        grammars: Sequence[str | None] | None = None, progress: ProgressCallback | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """For each prompt (token ids) return `n` completions, in prompt order; `progress` hears
        of each batch as it finishes.

        Prompts are grouped (shortest first, at most `max_batch_sequences` sequences per group),
        left padded, and generated together. Same `sampling.seed` and inputs -> same outputs; the
        global torch RNG is left as it was. `grammars`: one EBNF grammar per prompt (None: the
        prompt follows `sampling`'s own schema or grammar, if any). `seeds`: one per prompt, in
        place of `sampling.seed`; then each sample draws from its own generator, so a prompt's
        completions do not depend on which other prompts share the call (up to the floating point
        of a different batch shape)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        if any(len(p) == 0 for p in prompts):
            raise ValueError("empty prompt")
        if grammars is not None and len(grammars) != len(prompts):
            raise ValueError(f"{len(grammars)} grammars for {len(prompts)} prompts")
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        shared = sampling.grammar if sampling.grammar is not None else sampling.json_schema
        constraints = [shared if g is None else g for g in grammars] if grammars is not None else [shared] * len(prompts)
        results: list[list[Completion]] = [[] for _ in prompts]
        was_training = self.model.training
        self.model.eval()
        started = time.monotonic()
        try:
            with self._generation_context():
                for batch_number, batch in enumerate(self._batches(prompts, n)):
                    seed = None if sampling.seed is None else sampling.seed + batch_number
                    row_seeds = None if seeds is None else [seeds[i] for i in batch.prompt_indices]
                    completions = self._generate_batch(batch, n, sampling, seed, [constraints[i] for i in batch.prompt_indices],
                                                       row_seeds)
                    for slot, prompt_index in enumerate(batch.prompt_indices):
                        results[prompt_index] = completions[slot * n : (slot + 1) * n]
                    if progress is not None:
                        progress(len(completions), sum(len(c.token_ids) for c in completions))
        finally:
            self.model.train(was_training)
        self.stats.seconds += time.monotonic() - started
        return results

    def sync_weights(self, state_dict: dict[str, Any]) -> None:
        """Colocated: a no-op on purpose (the trainer updates this same module in place).
        Otherwise copy the weights in."""
        if self.colocated:
            return
        self.model.load_state_dict(state_dict)

    def close(self) -> None:
        self._structured = None

    # ------------------------------------------------------------------ internals

    def _batches(self, prompts: Sequence[Sequence[int]], n: int) -> list[_Batch]:
        per_batch = max(1, self.max_batch_sequences // n)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        groups = [order[i : i + per_batch] for i in range(0, len(order), per_batch)]
        return [self._pad([list(prompts[i]) for i in group], group) for group in groups]

    def _pad(self, prompts: list[list[int]], indices: list[int]) -> _Batch:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        return _Batch(indices, ids.to(self.device), mask.to(self.device))

    def _generation_config(self, max_new_tokens: int) -> GenerationConfig:
        # A fresh config, not the model's: no top-k, repetition penalty or min length from its
        # defaults. Always greedy: sampling, when asked for, is done by NucleusSampler (the last
        # logits processor), which leaves only the drawn token for argmax to pick.
        return GenerationConfig(
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=self.stop_token_ids,
            pad_token_id=self.pad_token_id,
            use_cache=True,
        )

    def _generate_batch(
        self, batch: _Batch, n: int, sampling: SamplingParams, seed: int | None, constraints: Sequence[Any],
        row_seeds: Sequence[int] | None = None,
    ) -> list[Completion]:
        width = batch.input_ids.shape[1]
        room = self.max_positions - width
        if room <= 0:
            raise ValueError(f"prompt of {width} tokens leaves no room under the model's {self.max_positions} positions")
        max_new = min(sampling.max_new_tokens, room)
        recorder = _LogprobRecorder(logprob_temperature(sampling.temperature))
        processors: list[Any] = [recorder]
        grammar = None
        if any(c is not None for c in constraints):
            # One constraint per row: each prompt's, repeated for its n samples.
            grammar = self._schema_compiler().rows_processor([c for c in constraints for _ in range(n)])
            processors.append(grammar)
        if not sampling.greedy:
            generators = None
            if row_seeds is not None:  # row order: each prompt's n samples together (repeat_interleave)
                generators = [row_generator(s, k, self.device) for s in row_seeds for k in range(n)]
            processors.append(NucleusSampler(sampling.temperature, sampling.top_p, generators=generators))
        ids = batch.input_ids.repeat_interleave(n, dim=0)
        mask = batch.attention_mask.repeat_interleave(n, dim=0)
        kwargs: dict[str, Any] = {}
        if self.share_prefix and n > 1 and width > 1:
            kwargs[self._cache_keyword] = self._prefill(batch, n)
        with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices()):
            if seed is not None:
                torch.manual_seed(seed)
            output = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=self._generation_config(max_new),
                logits_processor=transformers.LogitsProcessorList(processors),
                **kwargs,
            )
        new_tokens = output[:, width:].cpu()
        logprobs = recorder.finish(new_tokens)
        prompt_lengths = batch.attention_mask.sum(dim=1).repeat_interleave(n).tolist()
        completions = [
            self._completion(new_tokens[row], logprobs[row], int(prompt_lengths[row]), max_new, grammar, row)
            for row in range(new_tokens.shape[0])
        ]
        self.stats.prompt_tokens += int(batch.attention_mask.sum()) * n
        self.stats.generated_tokens += sum(len(c.token_ids) for c in completions)
        return completions

    def _prefill(self, batch: _Batch, n: int) -> DynamicCache:
        """Run the prompts (all but their last token) once and repeat the cache n times.

        `generate` then feeds only the last prompt token, at the cache's length. Position ids
        follow the rule `generate` uses for left padding (cumulative sum of the mask)."""
        ids = batch.input_ids[:, :-1]
        mask = batch.attention_mask[:, :-1]
        positions = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)[:, :-1]
        cache = DynamicCache(config=self.model.config)
        with torch.no_grad():
            # logits_to_keep=1: the prefill's logits are thrown away; computing all of them would
            # take prompt_len x vocab floats (3.5 GB for an 18K prompt).
            self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{self._cache_keyword: cache},
                logits_to_keep=1,
            )
        cache.batch_repeat_interleave(n)
        return cache

    def _completion(
        self, tokens: torch.Tensor, logprobs: torch.Tensor, prompt_tokens: int, max_new: int, grammar: Any, row: int,
    ) -> Completion:
        token_list = tokens.tolist()
        stop_at = next((i for i, t in enumerate(token_list) if t in self.stop_token_ids), None)
        if stop_at is None:
            kept, finish = token_list[:max_new], "length"
            text_tokens = kept
        else:
            # The stop token stays in token_ids (the policy chose to stop; training sees that).
            kept, finish = token_list[: stop_at + 1], "stop"
            text_tokens = kept[:-1]
        return Completion(
            text=self.tokenizer.decode(text_tokens, skip_special_tokens=True),
            token_ids=kept,
            logprobs=[float(x) for x in logprobs[: len(kept)].tolist()],
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            forced=None if grammar is None else grammar.forced_flags(row, kept),
        )

    def _schema_compiler(self) -> Any:
        if self._structured is None:
            from spell.engines.structured import SchemaCompiler

            self._structured = SchemaCompiler(
                self.tokenizer,
                vocab_size=int(self.model.config.vocab_size),
                stop_token_ids=self.stop_token_ids,
            )
        return self._structured

    def _rng_devices(self) -> list[int]:
        return [self.device.index or 0] if self.device.type == "cuda" else []


def _default_stop_ids(tokenizer: Any) -> list[int]:
    """EOS plus the chat end-of-turn token (<|im_end|>), when the tokenizer has them."""
    stops: list[int] = []
    if tokenizer.eos_token_id is not None:
        stops.append(int(tokenizer.eos_token_id))
    turn_end = end_of_turn_id(tokenizer)
    if turn_end is not None and turn_end not in stops:
        stops.append(turn_end)
    if not stops:
        raise ValueError("the tokenizer has no EOS token; pass stop_token_ids")
    return stops
