"""The clipped policy-gradient loss (SPELL.md, "Loss") over the update batch of all roles.

Inputs are per-token tensors of shape [N, T] (N sequences, T response positions) and a 0/1 mask
of the response tokens; advantages are per sequence [N] or per token [N, T].
"""

from __future__ import annotations

from typing import Any

import torch

AGGREGATIONS = ("token-mean", "seq-mean")
KL_ESTIMATORS = ("k1", "k2", "k3")


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token-mean",
    denominator: float | None = None,
) -> torch.Tensor:
    """token-mean: sum over all masked tokens / their number; seq-mean: each sequence's token
    mean, then the mean over sequences (those without tokens left out).

    `denominator` replaces the count (tokens for token-mean, sequences for seq-mean) when a batch
    is split into micro-batches: pass the whole batch's count so the pieces add up.
    """
    mask = mask.to(values.dtype)
    if mode == "token-mean":
        total = (values * mask).sum()
        count = mask.sum() if denominator is None else torch.as_tensor(denominator, dtype=values.dtype)
        return total / count.clamp_min(1.0)
    if mode == "seq-mean":
        lengths = mask.sum(dim=-1)
        per_seq = (values * mask).sum(dim=-1) / lengths.clamp_min(1.0)
        has = (lengths > 0).to(values.dtype)
        count = has.sum() if denominator is None else torch.as_tensor(denominator, dtype=values.dtype)
        return (per_seq * has).sum() / count.clamp_min(1.0)
    raise ValueError(f"unknown aggregation {mode!r} (choices: {AGGREGATIONS})")


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi.
    k1: log r; k2: (log r)^2 / 2; k3: exp(-log r) - 1 + log r, with log r = logp - ref_logp."""
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    if estimator == "k3":
        neg = (-log_ratio).clamp(-20.0, 20.0)
        return torch.exp(neg) - 1.0 - neg
    raise ValueError(f"unknown KL estimator {estimator!r} (choices: {KL_ESTIMATORS})")


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float = 0.2,
    aggregation: str = "token-mean",
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    denominator: float | None = None,
    dual_clip: float = 0.0,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """PPO-clip: per token max(-A r, -A clip(r, 1-eps, 1+eps)) with r = exp(logp - old_logp),
    aggregated, plus kl_coef x KL (needs ref_logprobs) minus entropy_coef x entropy (needs the
    per-token `entropy`). Returns (loss, metrics of plain floats).

    `dual_clip` c > 1 (verl's clip_ratio_c, 3 in the release) bounds the per-token loss of a
    negative advantage by -A x c: a token whose ratio ran far above 1 cannot push the loss up
    without limit. On-policy (ratio 1) it never binds."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1).expand_as(logprobs)
    advantages = advantages.to(logprobs.dtype)
    mask = mask.to(logprobs.dtype)
    log_ratio = (logprobs - old_logprobs.detach()).clamp(-20.0, 20.0)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    per_token = torch.maximum(unclipped, clipped)
    dual_bound = None
    if dual_clip > 0:
        if dual_clip <= 1:
            raise ValueError(f"dual_clip must be > 1 (got {dual_clip})")
        dual_bound = -advantages * dual_clip
        per_token = torch.where(advantages < 0, torch.minimum(per_token, dual_bound), per_token)
    pg_loss = aggregate(per_token, mask, aggregation, denominator)
    loss = pg_loss

    with torch.no_grad():
        n_tokens = mask.sum().clamp_min(1.0)
        metrics: dict[str, Any] = {
            "pg_loss": float(pg_loss.detach()),
            "clip_fraction": float(((clipped > unclipped).to(mask.dtype) * mask).sum() / n_tokens),
            "dual_clip_fraction": 0.0 if dual_bound is None else float(
                (((torch.maximum(unclipped, clipped) > dual_bound) & (advantages < 0)).to(mask.dtype) * mask).sum() / n_tokens
            ),
            "ratio_mean": float((ratio * mask).sum() / n_tokens),
            "approx_kl_old": float(((-log_ratio) * mask).sum() / n_tokens),
            "tokens": float(mask.sum()),
        }

    if kl_coef > 0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs")
        kl = aggregate(kl_penalty(logprobs, ref_logprobs.detach(), kl_estimator), mask, aggregation, denominator)
        loss = loss + kl_coef * kl
        metrics["kl"] = float(kl.detach())
    elif ref_logprobs is not None:
        with torch.no_grad():
            metrics["kl"] = float(aggregate(kl_penalty(logprobs, ref_logprobs, kl_estimator), mask, aggregation))
    if entropy is not None:
        ent = aggregate(entropy, mask, aggregation, denominator)
        if entropy_coef > 0:
            loss = loss - entropy_coef * ent
        metrics["entropy"] = float(ent.detach())
    elif entropy_coef > 0:
        raise ValueError("entropy_coef > 0 needs the per-token entropy")
    metrics["loss"] = float(loss.detach())
    return loss, metrics


def supervised_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,  # noqa: ARG001 - the LossFn signature; a supervised step has no old policy
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logprobs: torch.Tensor | None = None,  # noqa: ARG001
    entropy: torch.Tensor | None = None,  # noqa: ARG001
    aggregation: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The negative log-likelihood of the response tokens, each sequence's tokens weighted by its
    `advantages` value (the supervised warm-up, spell/warmup.py: 1, or a weight that evens out
    examples of different lengths). It needs no old log-probabilities, so no extra forward."""
    nll = aggregate(-advantages * logprobs, mask, aggregation)
    return nll, {"nll": float(aggregate(-logprobs.detach(), mask, aggregation))}
