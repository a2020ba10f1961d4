"""What every policy trainer does: one optimizer step per batch of scored sequences.

A batch is the role-balanced update batch of one self-play step: prompt + response token ids,
the log-probabilities the rollout recorded, one advantage per sequence, the role, and optionally
reference log-probabilities. The loss is injected (spell/loss.py writes the clipped policy
gradient); the trainer owns packing, accumulation, clipping and the optimizer.

Accumulation is exact: with token-mean aggregation each micro-batch's loss is weighted by its
share of the batch's response tokens (seq-mean: its share of the sequences), so the summed
gradients equal those of the whole batch in one pass, whatever the micro-batch split.
"""

from __future__ import annotations

import time
from pathlib import Path
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import torch

from spell.trainers.logprobs import token_logprobs

OPTIMIZER_FILE = "optimizer.pt"


class LossFn(Protocol):
    """The policy loss over one micro-batch. Every tensor argument is [batch, length], aligned
    with the packed input ids (prompt and padding positions have mask False and value 0):
    `advantages` is each sequence's advantage repeated over its tokens. Returns a scalar loss
    aggregated over the micro-batch (token-mean or seq-mean) and float metrics."""

    def __call__(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
        ref_logprobs: torch.Tensor | None = None,
        entropy: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


@dataclass
class TrainSequence:
    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]  # one per response token
    advantage: float
    role: str = ""
    ref_logprobs: list[float] | None = None

    def __post_init__(self) -> None:
        if len(self.old_logprobs) != len(self.response_ids):
            raise ValueError(
                f"{len(self.old_logprobs)} old logprobs for {len(self.response_ids)} response tokens"
            )
        if self.ref_logprobs is not None and len(self.ref_logprobs) != len(self.response_ids):
            raise ValueError("ref_logprobs must have one value per response token")
        if not self.prompt_ids:
            raise ValueError("a training sequence needs at least one prompt token")

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


@dataclass
class TrainerSettings:
    lr: float = 2e-6
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 = no clipping
    micro_batch_tokens: int = 8192  # padded tokens per micro-batch (a longer sequence goes alone)
    logprob_chunk_tokens: int = 1024
    gradient_checkpointing: bool = False
    compute_entropy: bool = False  # pass per-token entropy to the loss (entropy bonus)
    loss_aggregation: str = "token-mean"  # or "seq-mean": how micro-batch losses are weighted
    pad_token_id: int = 0
    zero_stage: int = 0  # DeepSpeed only
    seed: int = 0

    @classmethod
    def from_run_config(cls, cfg: Any, pad_token_id: int = 0) -> "TrainerSettings":
        """Read the optim / trainer / loss / model sections of a spell.config.RunConfig."""
        return cls(
            lr=cfg.optim.lr,
            weight_decay=cfg.optim.weight_decay,
            betas=tuple(cfg.optim.betas),
            eps=cfg.optim.eps,
            grad_clip=cfg.optim.grad_clip,
            micro_batch_tokens=cfg.trainer.micro_batch_tokens,
            logprob_chunk_tokens=cfg.trainer.logprob_chunk_tokens,
            gradient_checkpointing=bool(getattr(cfg.model, "gradient_checkpointing", False)),
            compute_entropy=cfg.loss.entropy_coef > 0,
            loss_aggregation=cfg.loss.aggregation,
            pad_token_id=pad_token_id,
            zero_stage=cfg.trainer.zero_stage,
            seed=getattr(getattr(cfg, "run", None), "seed", 0) or 0,
        )


@dataclass
class MicroBatch:
    """Right-padded prompt+response rows; every tensor [rows, width]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    old_logprobs: torch.Tensor
    advantages: torch.Tensor
    ref_logprobs: torch.Tensor | None
    indices: list[int] = field(default_factory=list)  # positions in the original batch

    @property
    def response_tokens(self) -> int:
        return int(self.response_mask.sum())

    def to(self, device: torch.device) -> "MicroBatch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return MicroBatch(
            move(self.input_ids), move(self.attention_mask), move(self.response_mask),
            move(self.old_logprobs), move(self.advantages), move(self.ref_logprobs), self.indices,
        )


def pack_micro_batches(batch: Sequence[TrainSequence], token_budget: int) -> list[list[int]]:
    """Group sequence indices so each group's padded size (rows x longest) fits the budget.

    Longest first, greedy: similar lengths share a group, so little is padding. A sequence
    longer than the budget gets a group of its own."""
    order = sorted(range(len(batch)), key=lambda i: (-batch[i].length, i))
    groups: list[list[int]] = []
    for index in order:
        if groups:
            group = groups[-1]
            longest = batch[group[0]].length  # sorted: the first is the longest
            if (len(group) + 1) * longest <= token_budget:
                group.append(index)
                continue
        groups.append([index])
    return groups


def collate(batch: Sequence[TrainSequence], indices: list[int], pad_token_id: int) -> MicroBatch:
    rows = [batch[i] for i in indices]
    width = max(s.length for s in rows)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_token_id, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    response = torch.zeros(shape, dtype=torch.bool)
    old = torch.zeros(shape, dtype=torch.float32)
    advantages = torch.zeros(shape, dtype=torch.float32)
    has_ref = all(s.ref_logprobs is not None for s in rows)
    ref = torch.zeros(shape, dtype=torch.float32) if has_ref else None
    for row, seq in enumerate(rows):
        p, n = len(seq.prompt_ids), len(seq.response_ids)
        input_ids[row, : p + n] = torch.tensor(seq.prompt_ids + seq.response_ids, dtype=torch.long)
        attention[row, : p + n] = 1
        response[row, p : p + n] = True
        old[row, p : p + n] = torch.tensor(seq.old_logprobs, dtype=torch.float32)
        advantages[row, p : p + n] = seq.advantage
        if ref is not None:
            ref[row, p : p + n] = torch.tensor(seq.ref_logprobs, dtype=torch.float32)
    return MicroBatch(input_ids, attention, response, old, advantages, ref, list(indices))


def set_gradient_checkpointing(model: Any, enabled: bool) -> None:
    """Recompute activations in backward (transformers >= 5.2x calls it activation checkpointing)."""
    if hasattr(model, "activation_checkpointing_enable"):
        if enabled:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        elif model.is_activation_checkpointing:
            model.activation_checkpointing_disable()
    elif enabled:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()


class PolicyTrainer(ABC):
    """One optimizer step per `train_step(batch)`; subclasses supply the optimizer mechanics."""

    def __init__(self, model: Any, loss_fn: LossFn, settings: TrainerSettings, device: str | torch.device = "cpu"):
        if settings.loss_aggregation not in ("token-mean", "seq-mean"):
            raise ValueError(f"unknown loss aggregation {settings.loss_aggregation!r}")
        self.settings = settings
        self.loss_fn = loss_fn
        self.device = torch.device(device)
        self.steps_done = 0
        set_gradient_checkpointing(model, settings.gradient_checkpointing)

    # ------------------------------------------------------------------ subclass hooks

    @property
    @abstractmethod
    def model(self) -> Any:
        """The trained module (the one a colocated HF engine generates with)."""

    @abstractmethod
    def _backward(self, loss: torch.Tensor, is_last: bool) -> None: ...

    @abstractmethod
    def _optimizer_step(self) -> float:
        """Clip, step, zero the grads; return the gradient norm before clipping."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """{"model": ..., "optimizer": ..., "steps_done": int}"""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def set_learning_rate(self, lr: float) -> None: ...

    def save_optimizer(self, folder: Path) -> None:
        """Write the optimizer state (and step count) into a checkpoint folder."""
        state = self.state_dict()
        torch.save({"optimizer": state["optimizer"], "steps_done": state["steps_done"]}, folder / OPTIMIZER_FILE)

    def load_optimizer(self, folder: Path) -> None:
        """Restore what save_optimizer wrote (the model weights come from the model folder)."""
        state = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=False)
        self.load_state_dict(state)

    # ------------------------------------------------------------------ the step

    def train_step(self, batch: Sequence[TrainSequence]) -> dict[str, float]:
        """Forward/backward every micro-batch, then one clipped optimizer step.

        Metrics: loss (of the whole batch), grad_norm (before clipping), tokens (response
        tokens), sequences, micro_batches, seconds, plus the loss function's metrics averaged
        with the same weights as the loss."""
        if not batch:
            raise ValueError("empty training batch")
        started = time.monotonic()
        groups = pack_micro_batches(batch, self.settings.micro_batch_tokens)
        micro_batches = [collate(batch, g, self.settings.pad_token_id) for g in groups]
        total_tokens = sum(mb.response_tokens for mb in micro_batches)
        if total_tokens == 0:
            raise ValueError("the batch has no response tokens to train on")
        self.model.train()
        metrics: dict[str, float] = {}
        total_loss = 0.0
        for number, micro in enumerate(micro_batches):
            micro = micro.to(self.device)
            weight = self._weight(micro, total_tokens, len(batch))
            loss, loss_metrics = self._micro_loss(micro)
            self._backward(loss * weight, is_last=number == len(micro_batches) - 1)
            total_loss += float(loss.detach()) * weight
            for key, value in loss_metrics.items():
                metrics[key] = metrics.get(key, 0.0) + float(value) * weight
        grad_norm = self._optimizer_step()
        self.steps_done += 1
        self.model.eval()
        metrics.update(
            loss=total_loss,
            grad_norm=float(grad_norm),
            tokens=float(total_tokens),
            sequences=float(len(batch)),
            micro_batches=float(len(micro_batches)),
            seconds=time.monotonic() - started,
        )
        return metrics

    def _weight(self, micro: MicroBatch, total_tokens: int, total_sequences: int) -> float:
        if self.settings.loss_aggregation == "seq-mean":
            return micro.input_ids.shape[0] / total_sequences
        return micro.response_tokens / total_tokens

    def _micro_loss(self, micro: MicroBatch) -> tuple[torch.Tensor, dict[str, float]]:
        scored = token_logprobs(
            self.model,
            micro.input_ids,
            micro.attention_mask,
            micro.response_mask,
            chunk_size=self.settings.logprob_chunk_tokens,
            with_entropy=self.settings.compute_entropy,
        )
        return self.loss_fn(
            scored.logprobs,
            micro.old_logprobs,
            micro.advantages,
            micro.response_mask,
            ref_logprobs=micro.ref_logprobs,
            entropy=scored.entropy,
        )

    @torch.no_grad()
    def compute_logprobs(self, batch: Sequence[TrainSequence]) -> list[list[float]]:
        """Log-probabilities of each sequence's response tokens under the current weights (for
        reference log-probabilities or recomputed old log-probabilities), no gradient."""
        out: list[list[float]] = [[] for _ in batch]
        was_training = self.model.training
        self.model.eval()
        for group in pack_micro_batches(batch, self.settings.micro_batch_tokens):
            micro = collate(batch, group, self.settings.pad_token_id).to(self.device)
            scored = token_logprobs(
                self.model, micro.input_ids, micro.attention_mask, micro.response_mask,
                chunk_size=self.settings.logprob_chunk_tokens,
            )
            for row, index in enumerate(micro.indices):
                out[index] = scored.logprobs[row][micro.response_mask[row]].tolist()
        self.model.train(was_training)
        return out
