"""Temperature + nucleus (top-p) sampling for the HF engine, without sorting the vocabulary.

transformers samples top-p by sorting every row's full vocabulary each step and then draws with
`torch.multinomial` over it. On a CPU that is most of a decoding step once the batch is wide:
for SmolLM2's 49,152 tokens, sort + multinomial measured 12 ms for 3 rows and 160 ms for 48 rows
on 2 cores (a verifier batch), against ~1 ms and ~5 ms for a top-256 selection.

`NucleusSampler` gets the same distribution from the largest `candidates` logits: the nucleus is
the smallest prefix of tokens, by probability, whose mass reaches `top_p`; when the top
`candidates` tokens already hold that mass (almost always for a trained model at temperature
0.7), the nucleus lies inside them and nothing else is needed; rows where they do not fall back
to a full sort. The draw is made over the nucleus only.

Draws come from the global torch RNG (the engine seeds it per call), or, given one generator per
row, from each row's own generator: one uniform per row per decoding step, turned into a token by
the inverse of the row's nucleus distribution. Then a row's tokens depend on its own seed alone,
not on the other rows of its batch, which is what lets several ranks split a generation batch and
sample exactly what one process would (spell/distributed.py).

It runs as the last logits processor of a *greedy* `generate` call: it samples the token itself
and returns scores where only that token is finite, so `generate`'s argmax picks it. Processors
before it (the log-prob recorder, the grammar mask) are unaffected; draws use the global torch
RNG, so the engine's seeding still makes generation reproducible.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import torch
import transformers


def row_generator(seed: int, sample: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of sample `sample` of a prompt seeded `seed` (the same in every process)."""
    digest = hashlib.sha256(f"{seed}/{sample}".encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


class NucleusSampler(transformers.LogitsProcessor):
    def __init__(self, temperature: float, top_p: float, candidates: int = 256,
                 generators: Sequence[torch.Generator] | None = None) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be > 0 (greedy decoding needs no sampler)")
        if not 0 < top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        self.temperature = temperature
        self.top_p = top_p
        self.candidates = candidates
        self.generators = list(generators) if generators is not None else None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        uniforms = None
        if self.generators is not None:
            if len(self.generators) != scores.shape[0]:
                raise ValueError(f"{len(self.generators)} generators for {scores.shape[0]} rows")
            uniforms = torch.cat([torch.rand(1, generator=g, device=g.device) for g in self.generators]).to(scores.device)
        chosen = sample_tokens(scores, self.temperature, self.top_p, self.candidates, uniforms=uniforms)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, chosen.unsqueeze(-1), 0.0)
        return out


def sample_tokens(
    scores: torch.Tensor, temperature: float, top_p: float, candidates: int = 256, uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token per row of `scores` ([batch, vocab] logits; -inf = forbidden), drawn from
    softmax(scores / temperature) restricted to its top-p nucleus. Returns [batch] token ids.
    `uniforms` ([batch] in [0, 1)): each row's draw; None = torch.multinomial on the global RNG."""
    logits = scores.float() / temperature
    vocab = logits.shape[-1]
    if top_p >= 1.0:
        return _draw(logits, torch.arange(vocab, device=logits.device).expand_as(logits), uniforms)
    k = min(candidates, vocab)
    values, indices = logits.topk(k, dim=-1)  # sorted, largest first
    total = torch.logsumexp(logits, dim=-1, keepdim=True)
    covered = torch.exp(torch.logsumexp(values, dim=-1, keepdim=True) - total).squeeze(-1) >= top_p
    covered |= torch.isneginf(total.squeeze(-1))  # nothing allowed: no need to sort
    if k < vocab and not bool(covered.all()):
        # Rows whose nucleus reaches past the candidates (a flat distribution): sort them fully.
        rows = (~covered).nonzero().squeeze(-1)
        full_values, full_indices = logits[rows].sort(dim=-1, descending=True)
        tokens = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
        pick = lambda r: None if uniforms is None else uniforms[r]  # noqa: E731
        tokens[rows] = _nucleus_draw(full_values, full_indices, total[rows], top_p, pick(rows))
        keep = covered.nonzero().squeeze(-1)
        if keep.numel():
            tokens[keep] = _nucleus_draw(values[keep], indices[keep], total[keep], top_p, pick(keep))
        return tokens
    return _nucleus_draw(values, indices, total, top_p, uniforms)


def _nucleus_draw(
    values: torch.Tensor, indices: torch.Tensor, total: torch.Tensor, top_p: float, uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """values: each row's logits sorted descending (a prefix of them holding the nucleus);
    keep a token while the mass before it is below top_p (the token that crosses is kept)."""
    probs = torch.exp(values - total)
    before = torch.cumsum(probs, dim=-1) - probs
    kept = values.masked_fill(before >= top_p, float("-inf"))
    return _draw(kept, indices, uniforms)


def _draw(logits: torch.Tensor, indices: torch.Tensor, uniforms: torch.Tensor | None = None) -> torch.Tensor:
    # A row with nothing allowed (every logit -inf: a finished row under a grammar mask) draws
    # its first candidate; generate pads finished rows anyway.
    dead = torch.isneginf(logits).all(dim=-1)
    if bool(dead.any()):
        logits = logits.clone()
        logits[dead, 0] = 0.0
    probs = torch.softmax(logits, dim=-1)
    if uniforms is None:
        choice = torch.multinomial(probs, 1)
    else:
        # Inverse CDF: the first token whose cumulative probability passes the row's uniform (a
        # token of probability 0 never does).
        cdf = probs.cumsum(dim=-1)
        choice = (cdf <= uniforms.to(cdf.dtype).unsqueeze(-1) * cdf[:, -1:]).sum(dim=-1, keepdim=True)
        choice = choice.clamp(max=probs.shape[-1] - 1)
    return indices.gather(-1, choice).squeeze(-1)
