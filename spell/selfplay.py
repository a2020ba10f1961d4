"""One SPELL step (SPELL.md, "Step structure and batch"), read top to bottom:

    repeat (at most max_generation_batches) until B responder groups with varying rewards:
        propose -> parse -> ground -> G responder rollouts -> rule scores -> G verifier votes
        -> r_res = max(rule, vote) -> questioner rewards -> dynamic sampling -> memory update
    role-balanced update batch -> advantages -> one optimizer step -> weight sync -> metrics

The generation phases live in spell/rollout.py; rewards, batch and advantages are small pure
functions in their own modules, the update in spell/update.py. With no varied group the update
is skipped, but the step's metrics and every sample still go out.

Several ranks (spell/distributed.py): each generates its share of every generation batch and
receives the others' (spell/rollout.py), so from the rewards on every rank computes the same
records, memory, update batch and metrics; the trainer then trains each rank's shard of the
update batch (spell/trainers/base.py). `distributed` in the metrics says who did what.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from spell import batch as batching
from spell.curriculum import HistoryMemory, LengthCurriculum, MemoryEntry
from spell.distributed import SINGLE, DataParallel
from spell.parsing import DROPPED, FORMAT_ERROR
from spell.progress import NO_PROGRESS, Progress
from spell.rewards import questioner_reward, verifier_group_eligible, verifier_judgment_rewards
from spell.rollout import Corpus, Judge, Proposal, RolloutRunner, derive_seed
from spell.update import ROLES, PolicyUpdate, update_sequences, weight_sync


@dataclass
class SelfPlayState:
    """What carries over from step to step besides the weights: the two curricula."""

    memory: HistoryMemory
    curriculum: LengthCurriculum

    @classmethod
    def from_config(cls, cfg: Any) -> "SelfPlayState":
        return cls(HistoryMemory.from_config(cfg), LengthCurriculum.from_config(cfg))

    def state_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.state_dict(), "curriculum": self.curriculum.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory.load_state_dict(state["memory"])
        self.curriculum.load_state_dict(state["curriculum"])


@dataclass
class StepResult:
    step: int
    metrics: dict[str, Any]  # nested; the worker flattens it to dotted names
    samples: list[dict[str, Any]]  # one per question/answer/verdict triple (docs/events.md)
    trained: bool
    promoted: bool = False  # the length curriculum moved to its next stage after this step


@dataclass
class _Scored:
    """A proposal with its batch-level record (rewards, state) attached."""

    proposal: Proposal
    record: batching.QuestionRecord
    group: batching.ResponderGroup | None
    verifier_groups: list[batching.VerifierGroup] = field(default_factory=list)
    generation_batch: int = 0


class SelfPlay:
    """Runs steps for one policy (engine for rollouts, trainer for updates)."""

    def __init__(
        self,
        cfg: Any,
        engine: Any,
        trainer: Any,
        tokenizer: Any,
        corpus: Corpus,
        model_positions: int,
        state: SelfPlayState | None = None,
        ref_model: Any = None,
        recompute_old_logprobs: bool = False,
        sync_weights: Callable[[], None] | None = None,
        judge: Judge | None = None,
        progress: Progress = NO_PROGRESS,
        group: DataParallel = SINGLE,
    ):
        self.cfg = cfg
        self.engine = engine
        self.trainer = trainer
        self.tokenizer = tokenizer
        # judge: an external verifier (selfplay.verifier_model); None = the policy judges.
        self.group = group
        self.runner = RolloutRunner(engine, tokenizer, cfg, corpus, model_positions, judge=judge, progress=progress,
                                    group=group)
        self.state = state or SelfPlayState.from_config(cfg)
        self.updater = PolicyUpdate(
            trainer, ref_model=ref_model, kl_coef=cfg.loss.kl_coef, recompute_old_logprobs=recompute_old_logprobs,
            sync_weights=sync_weights or weight_sync(engine, trainer),
            progress=progress,
        )

    # =============================================================================== the step

    def step(self, step: int) -> StepResult:
        cfg, sp = self.cfg, self.cfg.selfplay
        started = time.monotonic()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()
        seed = derive_seed(cfg.run.seed, "step", step)
        rng = random.Random(seed)  # cluster / document / batch choices of this step
        torch.manual_seed(seed)
        memory, curriculum = self.state.memory, self.state.curriculum
        stage_index, stage_tokens = curriculum.stage, curriculum.max_context

        sampler = batching.DynamicSampler(sp.batch_groups, sp.max_generation_batches)
        scored: list[_Scored] = []
        forced_promotion = False
        gen_seconds: dict[str, float] = {}
        skipped_clusters = generated_tokens = 0
        per_rank = [{"generated_tokens": 0.0, "seconds": 0.0} for _ in range(self.group.world)]
        while not sampler.done:
            b = sampler.batches
            proposals, phases = self.runner.generation_batch(memory, curriculum, rng, derive_seed(seed, "batch", b))
            for k, v in phases.seconds.items():
                gen_seconds[k] = gen_seconds.get(k, 0.0) + v
            skipped_clusters += phases.skipped_clusters
            generated_tokens += phases.generated_tokens
            for mine, theirs in zip(per_rank, phases.per_rank):
                for k in mine:
                    mine[k] += theirs[k]
            if not proposals and phases.skipped_clusters and not curriculum.is_last:
                # Nothing fits this stage (every sampled cluster too long for it): move the length
                # curriculum on and try again in this step; an empty batch does not count.
                curriculum.stage += 1
                curriculum.history.clear()
                stage_index, stage_tokens = curriculum.stage, curriculum.max_context
                forced_promotion = True
                continue
            batch_scored = [self._score(p, b, step) for p in proposals]
            sampler.add_batch([s.group for s in batch_scored if s.group is not None])
            scored.extend(batch_scored)
            if not proposals:
                break

        questions = [s.record for s in scored]
        verifier_groups = [v for s in scored for v in s.verifier_groups]
        update = batching.build_update_batch(
            sampler.kept, questions, verifier_groups, rng,
            bad_ratio=sp.bad_questioner_ratio, verifier_share=sp.verifier_share, verifier_rule=sp.verifier_batch,
            verifier_samples=sp.verifier_samples, train_questioner=sp.train_questioner,
            train_verifier=self.runner.judge is None,
            without_varied_groups=sp.train_without_varied_groups, zero_variance=sampler.zero_variance,
        )

        times = {"generation": sum(gen_seconds.values()), "logprob": 0.0, "update": 0.0, "weight_sync": 0.0}
        train_metrics: dict[str, float] = {}
        role_counts = {r: 0 for r in ROLES}
        if not update.empty:
            sequences, role_counts = update_sequences(
                update, per_role_mean=cfg.loss.per_role_mean, unbiased_std=cfg.loss.advantage_std == "unbiased",
            )
            train_metrics = self.updater.run(sequences, times)

        answers = [a for s in scored for a in s.proposal.answers]
        promoted = False
        if answers:
            promoted = curriculum.record(sum(a.rule for a in answers) / len(answers))
        promoted = promoted or forced_promotion

        total = time.monotonic() - started
        metrics = self._metrics(
            scored, sampler, update, train_metrics, role_counts, times, gen_seconds, total,
            skipped_clusters, generated_tokens, stage_index, stage_tokens,
        )
        metrics["distributed"] = _distributed_metrics(scored, per_rank)
        metrics["time"].update(_rank_times(per_rank))
        trained_ids = {id(q) for q in update.questioner} | {id(g.question) for g in update.responder}
        samples = [x for s in scored for x in self._samples(s, stage_index, stage_tokens, id(s.record) in trained_ids)]
        return StepResult(step, metrics, samples, trained=bool(train_metrics), promoted=promoted)

    # ====================================================================== rewards per proposal

    def _score(self, p: Proposal, generation_batch: int, step: int) -> _Scored:
        """Rewards of one questioner sample and its groups, and the memory update."""
        rw = self.cfg.rewards
        record = batching.QuestionRecord(
            task=p.task, cluster=p.cluster, question=p.parse.question, answer=p.parse.answer,
            options=p.parse.options, doc_ids=list(p.doc_ids), sample=p.rollout,
        )
        group = None
        verifier_groups: list[batching.VerifierGroup] = []
        if p.parse.status == FORMAT_ERROR:
            record.status, record.reward = batching.FORMAT_ERROR, rw.format_penalty
        elif p.parse.status == DROPPED or p.skipped == "context":
            record.status = batching.DROPPED  # no answer part / over-long answer / too long: not trained
        elif p.skipped == "ungrounded":
            record.status, record.reward = batching.UNGROUNDED, rw.ungrounded_penalty
        else:
            rewards = [a.reward for a in p.answers]
            rbar = sum(rewards) / len(rewards)
            record.rbar = rbar
            record.reward = questioner_reward(rbar, mode=rw.questioner_mode, sigma=rw.sigma)
            group = batching.ResponderGroup(record, rewards, [a.rollout for a in p.answers])
            if not group.varied:
                record.status = batching.ZERO_VARIANCE
            for a in p.answers:
                if a.judgment is None:
                    continue
                j = a.judgment
                verifier_groups.append(
                    batching.VerifierGroup(
                        question=record,
                        decisions=j.decisions,
                        rewards=verifier_judgment_rewards(j.decisions, j.majority),
                        majority=j.majority,
                        eligible=verifier_group_eligible(
                            j.decisions, j.majority, a.rule, mode=rw.verifier_eligibility,
                            agreement_min=rw.agreement_min, agreement_max=rw.agreement_max,
                        ),
                        samples=j.rollouts,
                    )
                )
            # History memory: the admission rule (paper: r_que > 0) decides; fresh questions only.
            entry = MemoryEntry(p.parse.question, p.parse.answer, list(p.doc_ids), p.parse.options, rbar, step)
            self.state.memory.offer(p.task, p.cluster, entry, r_que=record.reward, rbar=rbar)
        return _Scored(p, record, group, verifier_groups, generation_batch)

    # ====================================================================== metrics

    def _metrics(
        self, scored, sampler, update, train, role_counts, times, gen_seconds, total,
        skipped_clusters, generated_tokens, stage_index, stage_tokens,
    ) -> dict[str, Any]:
        records = [s.record for s in scored]
        answers = [(s.proposal, a) for s in scored for a in s.proposal.answers]
        groups = [s.group for s in scored if s.group is not None]
        vgroups = [v for s in scored for v in s.verifier_groups]
        votes = [d for v in vgroups for d in v.decisions]
        valid_votes = [d for d in votes if d in (0, 1)]
        judged = [a for _, a in answers if a.judgment is not None and a.judgment.majority in (0, 1)]
        answered_records = [r for r in records if r.rbar is not None]
        status = lambda name: sum(1 for r in records if r.status == name)  # noqa: E731
        ctx = [p.context_tokens for p, _ in answers]
        resp_lens = [len(a.rollout.completion.token_ids) for _, a in answers]
        depths = [s.proposal.memory_depth for s in scored]
        model_seconds = times["generation"] + times["logprob"] + times["update"] + times["weight_sync"]
        trained_tokens = train.get("tokens", 0.0)

        per_task: dict[str, Any] = {}
        for task in sorted({r.task for r in records}):
            rs = [a.reward for p, a in answers if p.task == task]
            per_task[task] = {
                "questions": sum(1 for r in records if r.task == task),
                "valid": sum(1 for s in scored if s.record.task == task and s.proposal.parse.ok),
                "responder_reward": _mean(rs),
                "pass_rate": _mean([1.0 if a.rule >= 1.0 else 0.0 for p, a in answers if p.task == task]),
                "questioner_reward": _mean([r.reward for r in records if r.task == task and r.status != batching.DROPPED]),
            }
        return {
            "reward": {
                "questioner": _mean([r.reward for r in records if r.status != batching.DROPPED]),
                "responder": _mean([a.reward for _, a in answers]),
                "verifier": _mean([x for v in vgroups for x in v.rewards]),
                "rule": _mean([a.rule for _, a in answers]),
            },
            "pass_rate": {
                # responder: share of rollouts whose reward is 1; rule: whose rule score is 1
                "responder": _mean([1.0 if a.reward >= 1.0 else 0.0 for _, a in answers]),
                "rule": _mean([1.0 if a.rule >= 1.0 else 0.0 for _, a in answers]),
                "grounding": _mean([0.0 if s.proposal.skipped == "ungrounded" else 1.0 for s in scored if s.proposal.grounding is not None]),
            },
            "questioner": {
                "samples": len(records),
                "valid": sum(1 for s in scored if s.proposal.parse.ok),
                "parse_rate": _mean([0.0 if s.proposal.parse.status == FORMAT_ERROR else 1.0 for s in scored]),
                "format_error": status(batching.FORMAT_ERROR),
                "ungrounded": status(batching.UNGROUNDED),
                "zero_variance": status(batching.ZERO_VARIANCE),
                "all_solved": sum(1 for r in answered_records if r.rbar >= 1.0),
                "none_solved": sum(1 for r in answered_records if r.rbar <= 0.0),
                "dropped": status(batching.DROPPED),
                "skipped_context": sum(1 for s in scored if s.proposal.skipped == "context"),
                "rbar": _mean([r.rbar for r in answered_records]),
                # share of all questioner records that are well-formed questions grounded in
                # their documents (spell/quality.py); unparsable records count as ill-formed
                "question_quality": _mean([1.0 if s.proposal.quality is not None and s.proposal.quality.ok else 0.0
                                           for s in scored]),
            },
            "responder": {
                "groups": len(groups),
                "varied_groups": sum(1 for g in groups if g.varied),
                "keep_ratio": _mean([1.0 if g.varied else 0.0 for g in groups]),
                "response_tokens": _mean(resp_lens),
                "truncated_rate": _mean([1.0 if a.rollout.completion.truncated else 0.0 for _, a in answers]),
                "no_answer_rate": _mean([1.0 if a.extracted is None else 0.0 for _, a in answers]),
            },
            "verifier": {
                "judgments": len(votes),
                "yes_rate": _mean([1.0 if d == 1 else 0.0 for d in valid_votes]),
                "format_error_rate": _mean([1.0 if d not in (0, 1) else 0.0 for d in votes]),
                # how often the majority says what the rule score says (rule 0/1 only)
                "agreement_with_rule": _mean([1.0 if float(a.judgment.majority) == a.rule else 0.0 for a in judged if a.rule in (0.0, 1.0)]),
                "eligible_groups": sum(1 for v in vgroups if v.eligible),
                # the majority against the rule score: true-positive rate on rule-correct answers,
                # true-negative rate on rule-wrong ones, and the counts (for rates over a run)
                **_confusion(judged),
            },
            "context_tokens": {"mean": _mean(ctx), "max": max(ctx) if ctx else None},
            "memory": {"depth_mean": _mean(depths), "depth_max": max(depths) if depths else None},
            "curriculum": {
                "stage": stage_index,
                "max_context": stage_tokens,
                "rolling_accuracy": self.state.curriculum.rolling_accuracy,
            },
            "task": per_task,
            "batch": {
                "generation_batches": sampler.batches,
                "skipped_clusters": skipped_clusters,
                "fitted_documents": sum(s.proposal.fitted_out for s in scored),
                "responder_groups": update.counts.get("responder_groups", 0),
                "questioner_good": update.counts.get("questioner_good", 0),
                "questioner_bad": update.counts.get("questioner_bad", 0),
                "verifier_groups": update.counts.get("verifier_groups", 0),
                # 1: no responder group varied and the questioner / verifier trained anyway
                # (selfplay.train_without_varied_groups)
                "without_varied_groups": update.counts.get("without_varied_groups", 0),
                "sequences": role_counts,
                "updated": 1 if train else 0,
            },
            "train": {
                "loss": train.get("loss"),
                "pg_loss": train.get("pg_loss"),
                # With no reference model (kl_coef 0) this is the KL between the rollout policy
                # and the trained one at the update (k1 estimate; ~0 when strictly on-policy).
                "kl": train.get("kl", train.get("approx_kl_old")),
                "entropy": train.get("entropy"),
                "grad_norm": train.get("grad_norm"),
                "clip_fraction": train.get("clip_fraction"),
                "tokens": trained_tokens,
            },
            "throughput": {
                "generated_tokens": generated_tokens,
                "generation_tokens_per_s": generated_tokens / times["generation"] if times["generation"] > 0 else None,
                "trained_tokens_per_s": trained_tokens / times["update"] if times["update"] > 0 else None,
            },
            **_gpu_memory(),
            "time": {
                **{k: round(v, 4) for k, v in times.items()},
                "phases": {k: round(v, 4) for k, v in gen_seconds.items()},
                "total": round(total, 4),
                # parsing, rewards, prompt building, batching, bookkeeping: everything that is not
                # the model generating, scoring or updating
                "outside_model": round(max(total - model_seconds, 0.0), 4),
                "outside_model_share": round(max(total - model_seconds, 0.0) / total, 4) if total > 0 else None,
            },
        }

    # ====================================================================== samples

    def _samples(self, s: _Scored, stage_index: int, stage_tokens: int, trained: bool) -> list[dict[str, Any]]:
        """One triple per responder rollout; a question that got no rollouts is one triple with no
        response (its questioner output kept, so bad records can be inspected)."""
        p, r = s.proposal, s.record
        base = {
            "task": p.task,
            "cluster": p.cluster,
            "doc_ids": list(p.doc_ids),
            "responder_doc_ids": list(p.responder_doc_ids),
            "question": p.parse.question or None,
            "reference": p.parse.answer or None,
            "options": p.parse.options,
            "questioner_status": r.status,
            "questioner_reason": p.parse.reason or p.skipped or None,
            # the question-quality rule: "ok", or its reason (None for an unparsable record)
            "question_quality": None if p.quality is None else (p.quality.reason or "ok"),
            "evidence": p.parse.record.get("evidence") if isinstance(p.parse.record.get("evidence"), str) else None,
            "grounding_score": p.grounding_score,
            "memory_depth": p.memory_depth,
            "curriculum_stage": stage_index,
            "curriculum_max_context": stage_tokens,
            "generation_batch": s.generation_batch,
            "slot": p.slot,  # the work item: its seeds, and the rank that generated it
            "rank": p.rank,
            "rbar": r.rbar,
            "trained": trained,
        }
        if not p.answers:
            return [{**base, "questioner_output": p.rollout.completion.text, "context_tokens": p.rollout.completion.prompt_tokens,
                     "response": None, "extracted_answer": None, "votes": [], "majority": None, "verdict": None,
                     "rule_score": None, "rewards": {"questioner": r.reward, "responder": None, "verifier": None}}]
        out = []
        vg_by_answer = iter(s.verifier_groups)
        for i, a in enumerate(p.answers):
            vg = next(vg_by_answer) if a.judgment is not None else None
            majority = a.majority
            out.append({
                **base,
                "rollout": i,
                "context_tokens": a.rollout.completion.prompt_tokens,
                "response": a.rollout.completion.text,
                "response_tokens": len(a.rollout.completion.token_ids),
                "extracted_answer": a.extracted,
                "votes": list(a.judgment.decisions) if a.judgment else [],
                "verifier_outputs": [ro.completion.text[:2000] for ro in a.judgment.rollouts] if a.judgment else [],
                "majority": majority,
                "verdict": {1: "YES", 0: "NO", -1: "INVALID"}.get(majority, "SKIPPED") if majority is not None else "SKIPPED",
                "verifier_eligible": vg.eligible if vg else None,
                "rule_score": a.rule,
                "rewards": {"questioner": r.reward, "responder": a.reward, "verifier": _mean(vg.rewards) if vg else None},
            })
        return out


def _distributed_metrics(scored: list[_Scored], per_rank: list[dict[str, float]]) -> dict[str, Any]:
    """Who did what in this step: the world size, and each rank's questions and generated tokens
    (their seconds, and the slowest rank, are under `time`)."""
    # Keyed by rank (as text): each rank is one dotted metric name (`distributed.generated_tokens_per_rank.1`).
    return {
        "world_size": len(per_rank),
        "questions_per_rank": {str(r): sum(1 for s in scored if s.proposal.rank == r) for r in range(len(per_rank))},
        "generated_tokens_per_rank": {str(r): int(t["generated_tokens"]) for r, t in enumerate(per_rank)},
    }


def _rank_times(per_rank: list[dict[str, float]]) -> dict[str, Any]:
    """Generation seconds per rank and the slowest rank: a straggler shows as one rank far above
    the others (the step waits for it at every gather)."""
    seconds = [round(r["seconds"], 4) for r in per_rank]
    slowest = max(range(len(seconds)), key=lambda r: seconds[r])
    return {"generation_per_rank": {str(r): s for r, s in enumerate(seconds)}, "slowest_rank": slowest,
            "slowest_rank_generation": seconds[slowest]}


def _confusion(judged: list[Any]) -> dict[str, Any]:
    pos = [a for a in judged if a.rule == 1.0]
    neg = [a for a in judged if a.rule == 0.0]
    tp = sum(1 for a in pos if a.judgment.majority == 1)
    tn = sum(1 for a in neg if a.judgment.majority == 0)
    return {
        "true_positive_rate": tp / len(pos) if pos else None,
        "true_negative_rate": tn / len(neg) if neg else None,
        "rule_positives": len(pos), "rule_negatives": len(neg), "true_positives": tp, "true_negatives": tn,
    }


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _gpu_memory() -> dict[str, Any]:
    """This step's peak CUDA memory (GiB), when the model lives on a GPU; nothing on CPU."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return {}
    gib = 1024**3
    return {"gpu": {
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / gib, 3),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / gib, 3),
    }}
