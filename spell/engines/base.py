"""The interface every rollout engine implements.

Prompts reach an engine as token ids: the caller applies the chat template once, so both engines
see exactly the same tokens and the trainer can recompute log-probabilities on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 4096
    seed: int | None = None
    # A JSON schema the completion must follow (structured role outputs); None = free text.
    json_schema: dict[str, Any] | None = None
    # An xgrammar EBNF grammar the completion must follow (grounded records, spell/grounded.py);
    # `generate(..., grammars=[...])` gives each prompt its own instead.
    grammar: str | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


def logprob_temperature(sampling_temperature: float) -> float:
    """The temperature log-probabilities are taken at, by the engine that records them and the
    trainer that recomputes them: the sampling temperature (1 for greedy decoding, which has no
    distribution to temper)."""
    return float(sampling_temperature) if sampling_temperature > 0 else 1.0


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    # Log-probability of each sampled token under the policy's distribution at the sampling
    # temperature (before top-p and any grammar mask), one per token id.
    logprobs: list[float]
    finish_reason: str  # "stop" (EOS / stop token) or "length" (hit max_new_tokens)
    prompt_tokens: int = 0
    # Under a grammar: for each token, whether the grammar allowed only that one token. A forced
    # token has probability 1 under the constrained policy, so it carries no gradient: the trainer
    # leaves it out of the loss. None when nothing constrained the completion.
    forced: list[bool] | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


# progress(sequences finished, tokens generated) since the last call
ProgressCallback = Callable[[int, int], None]


class RolloutEngine(Protocol):
    """Generates completions for the policy's current weights."""

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
        grammars: Sequence[str | None] | None = None, progress: ProgressCallback | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """For each prompt (token ids) return `n` completions, in prompt order. `grammars`, when
        given, holds one EBNF grammar (or None: `sampling`'s own constraint) per prompt.
        `progress(sequences, tokens)` is called as parts of the work finish (spell/progress.py).
        `seeds`, when given, holds one seed per prompt (in place of `sampling.seed`): a prompt's
        samples then depend on its own seed only, not on the prompts beside it in the call, so
        ranks that split a batch draw what one process would."""
        ...

    def sync_weights(self, state_dict: dict[str, Any]) -> None:
        """Make the engine sample from these weights (called after every optimizer step)."""
        ...

    def close(self) -> None: ...


@dataclass
class EngineStats:
    """Counters an engine keeps so the step can report throughput."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
