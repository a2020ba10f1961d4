"""Per-token log-probabilities of response tokens, for sequences too long for full logits.

The naive way (`model(ids).logits.log_softmax(-1)`) holds a [batch, length, vocab] tensor: for an
18K-token sequence and SmolLM2's 49K vocabulary that is 3.5 GB in fp32, and autograd keeps it for
backward. Here the decoder runs once to hidden states, only the positions whose next token is
scored are kept, and the LM head + log-softmax run over them in chunks of `chunk_size` positions.
With gradients on, each chunk is checkpointed: backward recomputes that chunk's logits instead of
keeping them, so logits memory stays at one chunk whatever the length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint


@dataclass
class TokenLogprobs:
    """Aligned with the input: logprobs[b, t] = log p(input_ids[b, t] | input_ids[b, :t]) where
    target_mask[b, t] is true, 0 elsewhere (position 0 is never scored)."""

    logprobs: torch.Tensor  # [batch, length], float32
    entropy: torch.Tensor | None  # [batch, length] entropy of the distribution predicting t


def _chunk_logprobs(
    hidden: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module,
    temperature: float, with_entropy: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    # Calling the module (not F.linear on its weight) lets DeepSpeed ZeRO-3's hooks gather the
    # partitioned weight, also when the checkpoint re-runs this in backward.
    logits = lm_head(hidden).float()
    if temperature != 1.0:
        logits = logits / temperature
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if with_entropy:
        entropy = -(log_probs.exp() * log_probs).sum(-1)
    else:
        entropy = torch.zeros_like(picked)
    return picked, entropy


def gather_logprobs(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    lm_head: torch.nn.Module,
    chunk_size: int = 1024,
    with_entropy: bool = False,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(targets[i]) from hidden[i] ([N, H] -> [N]) through `lm_head` in chunks."""
    needs_grad = hidden.requires_grad or any(p.requires_grad for p in lm_head.parameters())
    recompute = torch.is_grad_enabled() and needs_grad
    picked_parts, entropy_parts = [], []
    for start in range(0, hidden.shape[0], chunk_size):
        args = (hidden[start : start + chunk_size], targets[start : start + chunk_size], lm_head)
        if recompute:
            picked, entropy = checkpoint(
                _chunk_logprobs, *args, temperature, with_entropy, use_reentrant=False
            )
        else:
            picked, entropy = _chunk_logprobs(*args, temperature, with_entropy)
        picked_parts.append(picked)
        entropy_parts.append(entropy)
    if not picked_parts:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty, (empty if with_entropy else None)
    return torch.cat(picked_parts), (torch.cat(entropy_parts) if with_entropy else None)


def shared_prefix_mask(segments: torch.Tensor, attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive [rows, 1, L, L] attention mask of prefix-shared rows: position q sees key k
    when k <= q, k is a real token, and k is in the prompt (segment 0) or in q's own response.
    Padding sees itself, so no softmax row is empty (an empty one is NaN, also in backward)."""
    length = segments.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()
    keys = segments[:, None, :]
    allowed = causal & ((keys == 0) | (keys == segments[:, :, None])) & attention_mask.bool()[:, None, :]
    allowed |= torch.eye(length, dtype=torch.bool, device=segments.device)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min).unsqueeze(1)


def token_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    target_mask: torch.Tensor,
    chunk_size: int = 1024,
    with_entropy: bool = False,
    temperature: float = 1.0,
    *,
    position_ids: torch.Tensor | None = None,
    segments: torch.Tensor | None = None,
    predictors: torch.Tensor | None = None,
) -> TokenLogprobs:
    """Log-probabilities of the tokens marked by `target_mask` ([batch, length] bool, usually
    the response tokens), with grad if grad is enabled. Right padding is expected (positions start
    at 0 for every row).

    Prefix-shared rows (one prompt, then several responses; see trainers/base.collate) pass
    `segments`, `position_ids` and `predictors` (the position whose hidden state predicts each
    token); the responses then see the prompt and themselves only, exactly as if each were its
    own row, while the prompt is computed once."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model.base_model
    if segments is not None:
        dtype = next(model.parameters()).dtype
        mask = shared_prefix_mask(segments, attention_mask, dtype if dtype.is_floating_point else torch.float32)
        outputs = decoder(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False)
    else:
        outputs = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    hidden = outputs[0] if isinstance(outputs, tuple) else outputs.last_hidden_state
    # The hidden state at t-1 predicts the token at t (or the one `predictors` names).
    scored = target_mask.bool().clone()
    scored[:, 0] = False
    rows, cols = scored.nonzero(as_tuple=True)
    sources = cols - 1 if predictors is None else predictors[rows, cols]
    picked, entropy = gather_logprobs(
        hidden[rows, sources],
        input_ids[rows, cols],
        model.get_output_embeddings(),
        chunk_size=chunk_size,
        with_entropy=with_entropy,
        temperature=temperature,
    )
    full = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    full = full.index_put((rows, cols), picked)
    full_entropy = None
    if entropy is not None:
        full_entropy = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
        full_entropy = full_entropy.index_put((rows, cols), entropy)
    return TokenLogprobs(full, full_entropy)
