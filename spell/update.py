"""From an update batch to one optimizer step (SPELL.md, "Advantages" and "Loss").

`update_sequences` turns the role-balanced batch (spell/batch.py) into training sequences with
advantages: group z-scores for the responder and the verifier, per-task z-scores across the batch
for the questioner. `PolicyUpdate` then runs the step: old log-probabilities recomputed when the
engine's cannot be used, reference log-probabilities for a KL penalty, the trainer's optimizer
step, the weight sync to the engine. The self-play step and the RLVR baseline share both.

Loss aggregation: the trainer takes ONE token-mean over every response token of the batch, as
the release's verl actor does with its single mini-batch. `per_role_mean` instead makes the loss
the SUM of the three roles' token-means: the clipped loss is positively homogeneous in the
advantage, so scaling each role's advantages by (all tokens / that role's tokens) turns the one
token-mean into that sum. It weighs a role by 1 whatever its length, which moves weight to the
role with the fewest tokens (typically the verifier).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from spell.advantages import group_zscore, questioner_advantages
from spell.batch import UpdateBatch
from spell.progress import NO_PROGRESS, Progress
from spell.trainers.base import TrainSequence, sequence_logprobs

ROLES = ("questioner", "responder", "verifier")


def update_sequences(
    update: UpdateBatch, *, per_role_mean: bool = False, unbiased_std: bool = True,
) -> tuple[list[TrainSequence], dict[str, int]]:
    """Training sequences of an update batch, and how many of each role. Sequences whose
    completion is empty are left out (nothing to train)."""
    per_role: dict[str, list[tuple[Any, float]]] = {r: [] for r in ROLES}
    for g in update.responder:
        per_role["responder"] += list(zip(g.samples, group_zscore(g.rewards, unbiased=unbiased_std)))
    qs = update.questioner
    per_role["questioner"] = list(zip(
        [q.sample for q in qs],
        questioner_advantages([q.reward for q in qs], [q.task for q in qs], unbiased=unbiased_std),
    ))
    for v in update.verifier:
        per_role["verifier"] += list(zip(v.samples, group_zscore(v.rewards, unbiased=unbiased_std)))
    tokens = {r: sum(len(ro.completion.token_ids) for ro, _ in items) for r, items in per_role.items()}
    all_tokens = sum(tokens.values())
    out: list[TrainSequence] = []
    counts = {r: 0 for r in ROLES}
    for role, items in per_role.items():
        scale = 1.0
        if per_role_mean:
            scale = all_tokens / tokens[role] if tokens[role] else 0.0
        for rollout, advantage in items:
            c = rollout.completion
            if not c.token_ids:
                continue
            mask = None if c.forced is None else [not f for f in c.forced]
            if mask is not None and not any(mask):
                continue  # every token forced: nothing the policy chose
            out.append(TrainSequence(list(rollout.prompt_ids), list(c.token_ids), list(c.logprobs), advantage * scale, role,
                                     loss_mask=mask))
            counts[role] += 1
    return out, counts


class PolicyUpdate:
    """One optimizer step on a list of training sequences, then the weight sync."""

    def __init__(
        self,
        trainer: Any,
        *,
        ref_model: Any = None,
        kl_coef: float = 0.0,
        recompute_old_logprobs: bool = False,
        sync_weights: Callable[[], None] | None = None,
        progress: Progress = NO_PROGRESS,
    ):
        self.trainer = trainer
        self.progress = progress
        self.ref_model = ref_model  # only with kl_coef > 0
        self.kl_coef = kl_coef
        # The HF engine records the very log-probabilities the trainer computes; an engine with
        # other kernels (vLLM) should have them recomputed by the trainer (verl does the same).
        self.recompute_old_logprobs = recompute_old_logprobs
        self.sync_weights = sync_weights

    def run(self, sequences: list[TrainSequence], times: dict[str, float]) -> dict[str, float]:
        """Train on `sequences`; fills times["logprob" | "update" | "weight_sync"]; returns the
        trainer's metrics ({} when there is nothing to train)."""
        if not sequences:
            return {}
        t = time.monotonic()
        if self.recompute_old_logprobs or (self.ref_model is not None and self.kl_coef > 0):
            with self.progress.phase("logprob", len(sequences)):
                self._logprobs(sequences)
        times["logprob"] = time.monotonic() - t
        t = time.monotonic()
        with self.progress.phase("update", len(sequences)):  # one optimizer step: its start and its end
            metrics = self.trainer.train_step(sequences)
        times["update"] = time.monotonic() - t
        t = time.monotonic()
        if self.sync_weights is not None:
            self.sync_weights()
        times["weight_sync"] = time.monotonic() - t
        return metrics

    def _logprobs(self, sequences: list[TrainSequence]) -> None:
        """Old log-probabilities recomputed by the trainer (when asked) and reference
        log-probabilities (only with a KL penalty)."""
        if self.recompute_old_logprobs:
            for seq, lp in zip(sequences, self.trainer.compute_logprobs(sequences)):
                seq.old_logprobs = lp
        if self.ref_model is not None and self.kl_coef > 0:
            for seq, lp in zip(sequences, model_logprobs(self.ref_model, sequences, self.trainer.settings)):
                seq.ref_logprobs = lp


def weight_sync(engine: Any, trainer: Any) -> Callable[[], None]:
    """After each optimizer step: the trainer's whole weights into the engine (on every rank,
    each rank's own engine). Nothing for an engine that generates with the trained module itself
    (the colocated HF engine), where gathering ZeRO-3 weights would only cost a copy."""
    if getattr(engine, "colocated", False) and getattr(engine, "model", None) is trainer.model:
        return lambda: None
    return lambda: engine.sync_weights(trainer.engine_state_dict())


def model_logprobs(model: Any, sequences: list[TrainSequence], settings: Any) -> list[list[float]]:
    """Response-token log-probabilities of `sequences` under `model` (the frozen reference), at
    the trainer's temperature."""
    attention = getattr(model.config, "_attn_implementation", "sdpa")
    return sequence_logprobs(model, sequences, settings, next(model.parameters()).device,
                             share_prefix=settings.share_prefix and attention in ("sdpa", "eager"))
