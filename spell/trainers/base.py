"""What every policy trainer does: one optimizer step per batch of scored sequences.

A batch is the role-balanced update batch of one self-play step: prompt + response token ids,
the log-probabilities the rollout recorded, one advantage per sequence, the role, and optionally
reference log-probabilities. The loss is injected (spell/loss.py writes the clipped policy
gradient); the trainer owns packing, accumulation, clipping and the optimizer.

Accumulation is exact: with token-mean aggregation each micro-batch's loss is weighted by its
share of the batch's response tokens (seq-mean: its share of the sequences), so the summed
gradients equal those of the whole batch in one pass, whatever the micro-batch split.

Data parallel (spell/distributed.py): every rank is given the whole batch and trains its shard
(`balanced_shards`: about equal tokens, a shared prompt's sequences together). The weights stay
those of the whole batch (the global token count, not the shard's), and the loss is multiplied
by the world size because the DeepSpeed engine averages the ranks' gradients: the averaged
gradient is the one-process gradient of the whole batch. Every rank runs as many micro-batches as
the busiest one (the others pad with a weight-0 micro-batch), since ZeRO's gradient reduction and
ZeRO-3's parameter gathering are collectives that every rank must join equally often.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ContextManager, Protocol, Sequence

import torch

from spell.distributed import SINGLE, DataParallel, balanced_shards
from spell.engines.base import logprob_temperature
from spell.trainers.logprobs import TokenLogprobs, token_logprobs

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
    # Which response tokens the loss sees (None: all). Tokens a grammar forced are left out: under
    # the constrained policy their probability is 1, so they carry no gradient.
    loss_mask: list[bool] | None = None

    def __post_init__(self) -> None:
        if len(self.old_logprobs) != len(self.response_ids):
            raise ValueError(
                f"{len(self.old_logprobs)} old logprobs for {len(self.response_ids)} response tokens"
            )
        if self.loss_mask is not None and len(self.loss_mask) != len(self.response_ids):
            raise ValueError("loss_mask must have one value per response token")
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
    # Sequences with the same prompt (a responder group) share one row: the prompt once, then
    # each response, which attends to the prompt and to itself only (see collate).
    share_prefix: bool = True
    # ... up to this many tokens a row: the row's attention mask is rows x L x L, and attention
    # under an explicit mask computes all of it, so long contexts keep one sequence per row.
    shared_row_max_tokens: int = 8192
    # Log-probabilities (and entropy) of the tempered distribution, softmax(logits / T), T the
    # sampling temperature: the distribution the rollouts were drawn from (before top-p), as verl
    # and TRL compute them. The engine records the same quantity, so the ratio starts at 1.
    temperature: float = 1.0

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
            share_prefix=bool(getattr(cfg.trainer, "share_prefix", True)),
            temperature=logprob_temperature(cfg.sampling.temperature),
        )


@dataclass
class MicroBatch:
    """Right-padded rows; every tensor [rows, width].

    A row holds one sequence (prompt + response), or, with prefix sharing, one prompt followed by
    the responses of every sequence that has that prompt. Then `segments` marks the prompt 0 and
    response k as k (1-based), `position_ids` restart after the prompt for each response, and
    `predictors` says which position's hidden state predicts each token (the last prompt token
    for every response's first token). All three are None when each row is one sequence."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    old_logprobs: torch.Tensor
    advantages: torch.Tensor
    ref_logprobs: torch.Tensor | None
    indices: list[int] = field(default_factory=list)  # positions in the original batch
    # (batch index, row, first, end) of each sequence's response tokens
    spans: list[tuple[int, int, int, int]] = field(default_factory=list)
    position_ids: torch.Tensor | None = None
    segments: torch.Tensor | None = None
    predictors: torch.Tensor | None = None

    @property
    def response_tokens(self) -> int:
        return int(self.response_mask.sum())

    def to(self, device: torch.device) -> "MicroBatch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return MicroBatch(
            move(self.input_ids), move(self.attention_mask), move(self.response_mask),
            move(self.old_logprobs), move(self.advantages), move(self.ref_logprobs), self.indices, self.spans,
            move(self.position_ids), move(self.segments), move(self.predictors),
        )

    def logprobs_of(self, values: torch.Tensor) -> dict[int, list[float]]:
        """Per original sequence, its response tokens' entries of a [rows, width] tensor."""
        return {index: values[row, first:end].tolist() for index, row, first, end in self.spans}


def plan_rows(batch: Sequence[TrainSequence], token_budget: int, share_prefix: bool) -> list[list[int]]:
    """The rows of a packed batch, as lists of sequence indices. Without prefix sharing each
    sequence is a row; with it, sequences with the same prompt share rows (the prompt once, then
    their responses), a row closing when the next response would take it past `token_budget`
    (a sequence longer than that is a row of its own)."""
    if not share_prefix:
        return [[i] for i in range(len(batch))]
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for index, seq in enumerate(batch):
        by_prompt.setdefault(tuple(seq.prompt_ids), []).append(index)
    rows: list[list[int]] = []
    for indices in by_prompt.values():
        row: list[int] = []
        length = len(batch[indices[0]].prompt_ids)
        for index in indices:
            added = len(batch[index].response_ids)
            if row and length + added > token_budget:
                rows.append(row)
                row, length = [], len(batch[index].prompt_ids)
            row.append(index)
            length += added
        rows.append(row)
    return rows


def row_length(batch: Sequence[TrainSequence], row: Sequence[int]) -> int:
    return len(batch[row[0]].prompt_ids) + sum(len(batch[i].response_ids) for i in row)


# A row joins a micro-batch only if it is at least this share of the micro-batch's longest row, so
# at most half of what the model runs is padding. Without it a batch that mixes a 1.5K-token
# questioner row with 100-token verifier rows pads the short ones to 1.5K: 67% of the cpu-demo
# warm-up's positions were padding (bench/packing.py).
MIN_ROW_FILL = 0.5


def pack_rows(batch: Sequence[TrainSequence], rows: list[list[int]], token_budget: int) -> list[list[list[int]]]:
    """Group rows into micro-batches whose padded size (rows x longest) fits the budget.

    Longest first, greedy: similar lengths share a micro-batch, and a row shorter than
    MIN_ROW_FILL of the micro-batch's longest starts a new one, so little is padding. A row
    longer than the budget gets a micro-batch of its own."""
    order = sorted(range(len(rows)), key=lambda r: (-row_length(batch, rows[r]), rows[r][0]))
    groups: list[list[list[int]]] = []
    for r in order:
        if groups:
            group = groups[-1]
            longest = row_length(batch, group[0])  # sorted: the first is the longest
            if (len(group) + 1) * longest <= token_budget and row_length(batch, rows[r]) >= MIN_ROW_FILL * longest:
                group.append(rows[r])
                continue
        groups.append([rows[r]])
    return groups


def pack_micro_batches(batch: Sequence[TrainSequence], token_budget: int) -> list[list[int]]:
    """One sequence per row: the sequence indices of each micro-batch (see pack_rows)."""
    return [[row[0] for row in group] for group in pack_rows(batch, plan_rows(batch, token_budget, False), token_budget)]


def micro_batches(batch: Sequence[TrainSequence], settings: "TrainerSettings", share_prefix: bool | None = None) -> list[MicroBatch]:
    """The batch packed and collated, ready for `score`."""
    share = settings.share_prefix if share_prefix is None else share_prefix
    rows = plan_rows(batch, min(settings.micro_batch_tokens, settings.shared_row_max_tokens), share)
    return [collate(batch, group, settings.pad_token_id) for group in pack_rows(batch, rows, settings.micro_batch_tokens)]


def collate(batch: Sequence[TrainSequence], rows: Sequence[int] | Sequence[Sequence[int]], pad_token_id: int) -> MicroBatch:
    """Rows of sequence indices -> padded tensors. A plain list of indices is one sequence per row."""
    rows = [[r] if isinstance(r, int) else list(r) for r in rows]
    shared = any(len(row) > 1 for row in rows)
    width = max(row_length(batch, row) for row in rows)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_token_id, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    response = torch.zeros(shape, dtype=torch.bool)
    old = torch.zeros(shape, dtype=torch.float32)
    advantages = torch.zeros(shape, dtype=torch.float32)
    has_ref = all(batch[i].ref_logprobs is not None for row in rows for i in row)
    ref = torch.zeros(shape, dtype=torch.float32) if has_ref else None
    positions = torch.zeros(shape, dtype=torch.long) if shared else None
    segments = torch.zeros(shape, dtype=torch.long) if shared else None
    predictors = torch.zeros(shape, dtype=torch.long) if shared else None
    spans: list[tuple[int, int, int, int]] = []
    for r, row in enumerate(rows):
        prompt = batch[row[0]].prompt_ids
        p = len(prompt)
        input_ids[r, :p] = torch.tensor(prompt, dtype=torch.long)
        attention[r, :p] = 1
        if shared:
            positions[r, :p] = torch.arange(p)
            predictors[r, 1:p] = torch.arange(p - 1)
        cursor = p
        for k, index in enumerate(row, start=1):
            seq = batch[index]
            n = len(seq.response_ids)
            end = cursor + n
            input_ids[r, cursor:end] = torch.tensor(seq.response_ids, dtype=torch.long)
            attention[r, cursor:end] = 1
            response[r, cursor:end] = True if seq.loss_mask is None else torch.tensor(seq.loss_mask, dtype=torch.bool)
            old[r, cursor:end] = torch.tensor(seq.old_logprobs, dtype=torch.float32)
            advantages[r, cursor:end] = seq.advantage
            if ref is not None:
                ref[r, cursor:end] = torch.tensor(seq.ref_logprobs, dtype=torch.float32)
            if shared and n:
                positions[r, cursor:end] = torch.arange(p, p + n)
                segments[r, cursor:end] = k
                predictors[r, cursor] = p - 1
                predictors[r, cursor + 1 : end] = torch.arange(cursor, end - 1)
            spans.append((index, r, cursor, end))
            cursor = end
    indices = [i for row in rows for i in row]
    return MicroBatch(input_ids, attention, response, old, advantages, ref, indices, spans, positions, segments, predictors)


def score(
    model: Any, micro: MicroBatch, chunk_size: int, with_entropy: bool = False, temperature: float = 1.0,
) -> TokenLogprobs:
    """Log-probabilities (and entropy) of a micro-batch's response tokens under `model`, at
    `temperature`."""
    return token_logprobs(
        model, micro.input_ids, micro.attention_mask, micro.response_mask, chunk_size=chunk_size,
        with_entropy=with_entropy, temperature=temperature, position_ids=micro.position_ids,
        segments=micro.segments, predictors=micro.predictors,
    )


@torch.no_grad()
def sequence_logprobs(
    model: Any, batch: Sequence[TrainSequence], settings: "TrainerSettings", device: Any, share_prefix: bool | None = None,
) -> list[list[float]]:
    """Each sequence's response-token log-probabilities under `model`, without gradient."""
    out: list[list[float]] = [[] for _ in batch]
    for micro in micro_batches(batch, settings, share_prefix):
        scored = score(model, micro.to(device), settings.logprob_chunk_tokens, temperature=settings.temperature)
        for index, values in micro.logprobs_of(scored.logprobs).items():
            out[index] = values
    return out


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
        # Several sequences in a row need per-token weights for seq-mean; and a custom attention
        # mask, which flash-attention kernels do not take.
        attention = getattr(getattr(model, "config", None), "_attn_implementation", "sdpa")
        self._share_prefix = (settings.share_prefix and settings.loss_aggregation == "token-mean"
                              and attention in ("sdpa", "eager"))
        set_gradient_checkpointing(model, settings.gradient_checkpointing)
        self.group: DataParallel = SINGLE  # set by the training loop when several ranks train

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

    #: what the engine does to the ranks' gradients: 1 = sums them (or there is one rank); the
    #: world size = averages them (DeepSpeed), so the loss is scaled up by as much.
    averages_gradients = False

    def whole_weights(self) -> ContextManager[Any]:
        """Inside it every rank holds the whole model's weights in `model` (ZeRO-3 gathers its
        shards: a collective); nothing to do when each rank holds them anyway."""
        return contextlib.nullcontext()

    def engine_state_dict(self) -> dict[str, Any]:
        """The whole model's weights on every rank (for a rollout engine that holds a copy)."""
        return self.model.state_dict()

    def weights_digest(self) -> str:
        """A fingerprint of the whole weights (per tensor: the sum, the sum of absolute values and
        of squares, in float64): ranks that hold the same weights give the same digest, so a rank
        that drifted shows. Not a cryptographic hash; cheap enough for every checkpoint."""
        import hashlib

        digest = hashlib.sha256()
        with self.whole_weights(), torch.no_grad():
            for name, param in self.model.named_parameters():
                x = param.detach().double()
                sums = torch.stack([x.sum(), x.abs().sum(), (x * x).sum()]).cpu().tolist()
                digest.update(f"{name}:{sums!r};".encode())
        return digest.hexdigest()[:16]

    def generation_context(self) -> ContextManager[Any]:
        """A context to generate with the trained module in (a colocated HF engine enters it for
        each `generate`). Nothing by default; ZeRO-3 gathers the partitioned weights once for the
        whole call instead of once per layer per decoded token."""
        return contextlib.nullcontext()

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
        total_tokens = sum(_trained_tokens(seq) for seq in batch)  # of the whole batch, on every rank
        if total_tokens == 0:
            raise ValueError("the batch has no response tokens to train on")
        packed, real, _ = self._shard_micro_batches(batch)
        scale = float(self.group.world) if self.averages_gradients else 1.0
        self.model.train()
        metrics: dict[str, float] = {}
        total_loss = 0.0
        for number, micro in enumerate(packed):
            micro = micro.to(self.device)
            weight = self._weight(micro, total_tokens, len(batch)) if number < real else 0.0
            loss, loss_metrics = self._micro_loss(micro)
            self._backward(loss * (weight * scale), is_last=number == len(packed) - 1)
            total_loss += float(loss.detach()) * weight
            for key, value in loss_metrics.items():
                metrics[key] = metrics.get(key, 0.0) + float(value) * weight
        grad_norm = self._optimizer_step()
        self.steps_done += 1
        self.model.eval()
        # Every rank reports the whole batch: its weighted sums add up over the ranks.
        keys = sorted(metrics)
        summed = self.group.sum([total_loss, *(metrics[k] for k in keys), real,
                                 sum(int(mb.attention_mask.sum()) for mb in packed[:real])])
        metrics = dict(zip(keys, summed[1:-2]))
        metrics.update(
            loss=summed[0],
            grad_norm=float(grad_norm),
            tokens=float(total_tokens),
            sequences=float(len(batch)),
            micro_batches=summed[-2],
            trained_positions=summed[-1],
            seconds=self.group.max([time.monotonic() - started])[0],
        )
        return metrics

    def _shard_micro_batches(self, batch: Sequence[TrainSequence]) -> tuple[list[MicroBatch], int, list[int]]:
        """This rank's micro-batches of `batch`, how many of them are real, and which sequences of
        `batch` its shard holds (the micro-batches' indices are positions in the shard): one rank
        trains all of it; several train a shard each, the ranks with fewer micro-batches padded
        with weight-0 ones so that every rank runs as many."""
        if not self.group.several:
            packed = micro_batches(batch, self.settings, self._share_prefix)
            return packed, len(packed), list(range(len(batch)))
        shards = balanced_shards([seq.length for seq in batch], [tuple(seq.prompt_ids) for seq in batch], self.group.world)
        indices = shards[self.group.rank]
        packed = micro_batches([batch[i] for i in indices], self.settings, self._share_prefix) if indices else []
        real = len(packed)
        busiest = int(self.group.max([real])[0])
        if busiest > real:
            idle = _idle_sequence(batch, self.settings.pad_token_id)
            packed += [collate([idle], [0], self.settings.pad_token_id) for _ in range(busiest - real)]
        return packed, real, indices

    def _weight(self, micro: MicroBatch, total_tokens: int, total_sequences: int) -> float:
        if self.settings.loss_aggregation == "seq-mean":
            return micro.input_ids.shape[0] / total_sequences
        return micro.response_tokens / total_tokens

    def _micro_loss(self, micro: MicroBatch) -> tuple[torch.Tensor, dict[str, float]]:
        scored = score(self.model, micro, self.settings.logprob_chunk_tokens, self.settings.compute_entropy,
                       temperature=self.settings.temperature)
        return self.loss_fn(
            scored.logprobs,
            micro.old_logprobs,
            micro.advantages,
            micro.response_mask,
            ref_logprobs=micro.ref_logprobs,
            entropy=scored.entropy,
        )

    def compute_logprobs(self, batch: Sequence[TrainSequence]) -> list[list[float]]:
        """Log-probabilities of each sequence's response tokens under the current weights (for
        reference log-probabilities or recomputed old log-probabilities), no gradient."""
        was_training = self.model.training
        self.model.eval()
        try:
            if not self.group.several:
                return sequence_logprobs(self.model, batch, self.settings, self.device, self._share_prefix)
            # Each rank scores its shard (as many forwards as the busiest rank: ZeRO-3 gathers
            # weights in each), then every rank gets all of them.
            packed, real, indices = self._shard_micro_batches(batch)
            mine: dict[int, list[float]] = {}
            with torch.no_grad():
                for number, micro in enumerate(packed):
                    scored = score(self.model, micro.to(self.device), self.settings.logprob_chunk_tokens,
                                   temperature=self.settings.temperature)
                    if number < real:
                        mine.update({indices[i]: v for i, v in micro.logprobs_of(scored.logprobs).items()})
            out: list[list[float]] = [[] for _ in batch]
            for part in self.group.gather(mine):
                for index, values in part.items():
                    out[index] = values
            return out
        finally:
            self.model.train(was_training)


def _trained_tokens(seq: TrainSequence) -> int:
    return len(seq.response_ids) if seq.loss_mask is None else sum(seq.loss_mask)


def _idle_sequence(batch: Sequence[TrainSequence], pad_token_id: int) -> TrainSequence:
    """A one-token sequence for a weight-0 micro-batch (a rank with less work than the busiest)."""
    has_ref = all(seq.ref_logprobs is not None for seq in batch)
    return TrainSequence([pad_token_id], [pad_token_id], [0.0], 0.0, "idle", ref_logprobs=[0.0] if has_ref else None)
