"""Dynamic sampling and the role-balanced update batch (SPELL.md, "Step structure and batch").

The engine step fills the records below; these functions only choose which of them train.
`sample` fields carry whatever the trainer needs (token ids, old log-probabilities): opaque here.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
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
        """Nothing to train: skip the update (metrics and samples still go out)."""
        return not (self.responder or self.questioner or self.verifier)


def verifier_quota(
    eligible: int, responder_rollouts: int, *, rule: str = "fixed", share: float = 0.125, samples: int = 8,
) -> int:
    """How many eligible verifier groups go into the update batch.

    fixed (the release): int(responder_rollouts x share / samples), e.g. int(128 x 8 x 0.125 / 8)
    = 16, and none at all when fewer groups than that are eligible (or the count is 0);
    share: round(share x eligible), at least one when any is eligible and the share is positive.
    """
    if eligible <= 0 or share <= 0:
        return 0
    if rule == "fixed":
        k = int(responder_rollouts * share / samples)
        return k if 0 < k <= eligible else 0
    if rule == "share":
        return min(eligible, max(1, round(share * eligible)))
    raise ValueError(f"unknown verifier batch rule {rule!r} (choices: fixed, share)")


def sample_bad_questions(
    good: Sequence[QuestionRecord], questions: Sequence[QuestionRecord], rng: random.Random, bad_ratio: float,
) -> list[QuestionRecord]:
    """The "bad" questioner samples (format error, ungrounded, zero variance), stratified by task
    as the release draws them: tasks in order of their good count (most first), int(bad_ratio x
    good of the task) each, drawn at random from that task's bad ones; a task with too few hands
    its shortfall on to the next task."""
    good_per_task = Counter(q.task for q in good)
    bad_pool: dict[str, list[QuestionRecord]] = defaultdict(list)
    for q in questions:
        if q.status in BAD_STATES:
            bad_pool[q.task].append(q)
    chosen: list[QuestionRecord] = []
    carry = 0
    for task, n_good in good_per_task.most_common():
        want = int(bad_ratio * n_good) + carry
        pool = bad_pool.get(task, [])
        carry = max(0, want - len(pool))
        chosen.extend(rng.sample(pool, min(want, len(pool))))
    return chosen


def build_update_batch(
    kept: Sequence[ResponderGroup],
    questions: Sequence[QuestionRecord],
    verifier_groups: Sequence[VerifierGroup],
    rng: random.Random,
    *,
    bad_ratio: float = 1.0,
    verifier_share: float = 0.125,
    verifier_rule: str = "fixed",
    verifier_samples: int = 8,
    train_questioner: bool = True,
    train_verifier: bool = True,
    without_varied_groups: bool = False,
    zero_variance: Sequence[ResponderGroup] = (),
) -> UpdateBatch:
    """The role-balanced update batch.

    - responder: the kept groups (B x G rollouts);
    - questioner "good": the questions behind the kept groups; "bad": `sample_bad_questions`;
    - verifier: `verifier_quota` eligible groups drawn at random; none when none is eligible.
    All questioner samples are left out when `train_questioner` is off (ablation), all verifier
    samples when `train_verifier` is off (an external judge's samples are not the policy's).

    With no kept group the release trains nothing. `without_varied_groups` (a small-model switch:
    a 135M responder rarely gets a group with varied rewards) then still trains the other two
    roles: the questioner on every scored record (format errors, ungrounded, ill-formed and
    zero-variance questions: their rewards differ, so the per-task z-scores teach the form) and
    the verifier on its quota of eligible groups, counted over the `zero_variance` groups' rollouts.
    """
    responder = list(kept)
    good = [g.question for g in responder]
    questioner: list[QuestionRecord] = []
    n_bad = 0
    fallback = without_varied_groups and not responder
    if train_questioner and good:
        bad = sample_bad_questions(good, questions, rng, bad_ratio)
        questioner = good + bad
        n_bad = len(bad)
    elif train_questioner and fallback:
        scored = [q for q in questions if q.status in (VALID, *BAD_STATES)]
        if has_variance([q.reward for q in scored]):
            questioner = scored
            n_bad = sum(1 for q in scored if q.status in BAD_STATES)

    eligible = [v for v in verifier_groups if v.eligible]
    verifier: list[VerifierGroup] = []
    if train_verifier and (responder or fallback):
        rollouts = sum(len(g.rewards) for g in (responder or zero_variance))
        k = verifier_quota(len(eligible), rollouts, rule=verifier_rule, share=verifier_share, samples=verifier_samples)
        verifier = rng.sample(eligible, k)

    return UpdateBatch(
        responder=responder,
        questioner=questioner,
        verifier=verifier,
        counts={
            "responder_groups": len(responder),
            "questioner_good": (len(good) if good else len(questioner) - n_bad) if train_questioner else 0,
            "questioner_bad": n_bad,
            "verifier_eligible": len(eligible),
            "verifier_groups": len(verifier),
            "without_varied_groups": int(fallback and bool(questioner or verifier)),
        },
    )
