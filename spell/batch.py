"""Dynamic sampling and the role-balanced update batch (SPELL.md, "Step structure and batch").

The engine step fills the records below; these functions only choose which of them train.
`sample` fields carry whatever the trainer needs (token ids, old log-probabilities): opaque here.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

# Questioner sample states.
VALID = "valid"  # parsed and grounded; its group decides good / zero variance
FORMAT_ERROR = "format_error"  # reward -1
UNGROUNDED = "ungrounded"  # reward -0.5
ZERO_VARIANCE = "zero_variance"  # its responders all scored the same: reward 0
DROPPED = "dropped"  # no answer (unclosed <think>), over-long answer: never trained on
BAD_STATES = (FORMAT_ERROR, UNGROUNDED, ZERO_VARIANCE)

VARIANCE_EPS = 1e-8


@dataclass
class QuestionRecord:
    """One questioner sample."""

    task: str
    cluster: str
    status: str = VALID
    reward: float = 0.0
    rbar: float | None = None
    question: str = ""
    answer: str = ""
    options: dict[str, str] | None = None
    doc_ids: list[str] = field(default_factory=list)
    sample: Any = None


@dataclass
class ResponderGroup:
    """G responder rollouts of one question, with their rewards r_res."""

    question: QuestionRecord
    rewards: list[float]
    samples: list[Any] = field(default_factory=list)

    @property
    def varied(self) -> bool:
        return has_variance(self.rewards)

    @property
    def mean(self) -> float:
        return sum(self.rewards) / len(self.rewards) if self.rewards else 0.0


@dataclass
class VerifierGroup:
    """G verifier judgments of one responder rollout."""

    question: QuestionRecord
    decisions: list[int]
    rewards: list[float]
    majority: int
    eligible: bool
    samples: list[Any] = field(default_factory=list)


def has_variance(rewards: Sequence[float]) -> bool:
    return len(rewards) > 1 and max(rewards) - min(rewards) > VARIANCE_EPS


class DynamicSampler:
    """Collects responder groups whose rewards vary, over at most `max_batches` generation
    batches, until `target` (B) are kept. Use: while not sampler.done: sampler.add_batch(...)."""

    def __init__(self, target: int, max_batches: int):
        self.target = target
        self.max_batches = max_batches
        self.kept: list[ResponderGroup] = []
        self.zero_variance: list[ResponderGroup] = []
        self.surplus: list[ResponderGroup] = []  # varied, found after B were kept
        self.batches = 0

    @property
    def full(self) -> bool:
        return len(self.kept) >= self.target

    @property
    def done(self) -> bool:
        return self.full or self.batches >= self.max_batches

    def add_batch(self, groups: Sequence[ResponderGroup]) -> None:
        self.batches += 1
        for g in groups:
            if not g.varied:
                self.zero_variance.append(g)
            elif self.full:
                self.surplus.append(g)
            else:
                self.kept.append(g)


@dataclass
class UpdateBatch:
    responder: list[ResponderGroup]
    questioner: list[QuestionRecord]
    verifier: list[VerifierGroup]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """No responder group varied: skip the update (metrics and samples still go out)."""
        return not self.responder


def build_update_batch(
    kept: Sequence[ResponderGroup],
    questions: Sequence[QuestionRecord],
    verifier_groups: Sequence[VerifierGroup],
    rng: random.Random,
    *,
    bad_ratio: float = 1.0,
    verifier_share: float = 0.125,
    train_questioner: bool = True,
) -> UpdateBatch:
    """The role-balanced update batch.

    - responder: the kept groups (B x G rollouts);
    - questioner "good": the questions behind the kept groups; "bad": per task,
      round(bad_ratio x good of that task) drawn at random from that task's format-error,
      ungrounded and zero-variance questions (all of them when fewer exist);
    - verifier: round(verifier_share x eligible) eligible groups at random (at least one when any
      is eligible and the share is positive); none when none is eligible.
    All questioner samples are left out when `train_questioner` is off (ablation).
    """
    responder = list(kept)
    good = [g.question for g in responder]
    questioner: list[QuestionRecord] = []
    n_bad = 0
    if train_questioner and good:
        questioner.extend(good)
        good_per_task: dict[str, int] = defaultdict(int)
        for q in good:
            good_per_task[q.task] += 1
        bad_pool: dict[str, list[QuestionRecord]] = defaultdict(list)
        for q in questions:
            if q.status in BAD_STATES:
                bad_pool[q.task].append(q)
        for task in sorted(good_per_task):
            want = round(bad_ratio * good_per_task[task])
            pool = bad_pool.get(task, [])
            chosen = rng.sample(pool, min(want, len(pool)))
            questioner.extend(chosen)
            n_bad += len(chosen)

    eligible = [v for v in verifier_groups if v.eligible]
    verifier: list[VerifierGroup] = []
    if eligible and verifier_share > 0 and responder:
        k = min(len(eligible), max(1, round(verifier_share * len(eligible))))
        verifier = rng.sample(eligible, k)

    return UpdateBatch(
        responder=responder,
        questioner=questioner,
        verifier=verifier,
        counts={
            "responder_groups": len(responder),
            "questioner_good": len(good) if train_questioner else 0,
            "questioner_bad": n_bad,
            "verifier_eligible": len(eligible),
            "verifier_groups": len(verifier),
        },
    )
