"""The paper's RLVR baseline (`selfplay.mode = "rlvr"`): the responder alone, trained with rule
rewards on the questions of a fixed QA file instead of self-posed ones.

A step, in the self-play step's shape (spell/selfplay.py) without the questioner and the verifier:

    repeat (at most max_generation_batches) until B responder groups with varying rewards:
        draw questions_per_task items per task from the file -> G responder rollouts over the
        item's context (middle-truncated to the prompt limit) -> rule score against the item's
        accepted answers (the evaluation's scoring) -> dynamic sampling
    group z-scores -> one optimizer step -> weight sync -> metrics and samples

The file is in an evaluation format (LongBench-v2 JSON, LongBench QA JSON lines, DocMath JSON;
spell/data/evalsets.py). Training on a test set would make its evaluation meaningless, so a file
that is one of the run's evaluation sets, by path or by content, is refused (`read_rlvr_set`).
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from spell import batch as batching
from spell.engines.base import SamplingParams
from spell.evaluation import BadInput, build_prompt, item_options, score_response
from spell.parsing import extract_answer
from spell.progress import NO_PROGRESS, Progress
from spell.rollout import Rollout, derive_seed
from spell.selfplay import SelfPlayState, StepResult
from spell.update import ROLES, PolicyUpdate, update_sequences, weight_sync


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_rlvr_set(cfg: Any) -> list[Any]:
    """The items of `selfplay.rlvr_set`, checked: readable, in an evaluation format, and not one
    of `eval.sets` (same file, or the same bytes under another name). Raises BadInput."""
    from spell.data.evalsets import EvalSetFormatError, read_eval_set

    path = Path(cfg.selfplay.rlvr_set).expanduser()
    if not path.is_file():
        raise BadInput(f"selfplay.rlvr_set: {path} does not exist")
    digest = _digest(path)
    for other in cfg.eval.sets:
        o = Path(other).expanduser()
        if o.is_file() and (o.resolve() == path.resolve() or _digest(o) == digest):
            raise BadInput(f"selfplay.rlvr_set: {path} is the evaluation set {other}: training on it would score the test set")
    try:
        items = read_eval_set(path)
    except (EvalSetFormatError, OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"selfplay.rlvr_set: {exc}") from None
    weighted = {t for t, w in cfg.tasks.mix.items() if w > 0}
    usable = [it for it in items if it.task in weighted and it.answers]
    if not usable:
        raise BadInput(f"selfplay.rlvr_set: {path} has no item of a task in tasks.mix ({', '.join(sorted(weighted))})")
    return usable


class RLVRStep:
    """Runs RLVR baseline steps; the training loop drives it like `SelfPlay` (step(k) ->
    StepResult, `state` for checkpoints: the curricula are kept but unused)."""

    def __init__(
        self,
        cfg: Any,
        engine: Any,
        trainer: Any,
        tokenizer: Any,
        items: Sequence[Any],
        model_positions: int,
        state: SelfPlayState | None = None,
        ref_model: Any = None,
        recompute_old_logprobs: bool = False,
        sync_weights: Callable[[], None] | None = None,
        progress: Progress = NO_PROGRESS,
    ):
        self.cfg = cfg
        self.progress = progress
        self.engine = engine
        self.tokenizer = tokenizer
        self.items_by_task: dict[str, list[Any]] = {}
        for item in items:
            self.items_by_task.setdefault(item.task, []).append(item)
        self.prompt_limit = min(cfg.sampling.max_prompt_tokens, model_positions - cfg.sampling.max_response_tokens)
        self.state = state or SelfPlayState.from_config(cfg)
        self.updater = PolicyUpdate(
            trainer, ref_model=ref_model, kl_coef=cfg.loss.kl_coef, recompute_old_logprobs=recompute_old_logprobs,
            sync_weights=sync_weights or weight_sync(engine, trainer),
            progress=progress,
        )
        self._prompts: dict[str, list[int]] = {}  # item id -> prompt ids (items are fixed)

    def _prompt(self, item: Any) -> list[int]:
        if item.id not in self._prompts:
            self._prompts[item.id] = build_prompt(item, self.tokenizer, self.prompt_limit, self.cfg.prompts.style)
        return self._prompts[item.id]

    def _draw(self, rng: random.Random) -> list[Any]:
        """questions_per_task items of each task with a positive weight (scaled by the weights,
        as the self-play questioner's share), without repeats inside one batch."""
        mix = {t: w for t, w in self.cfg.tasks.mix.items() if w > 0 and t in self.items_by_task}
        total, weight = self.cfg.selfplay.questions_per_task * len(mix), sum(mix.values())
        out: list[Any] = []
        for task in sorted(mix):
            pool = self.items_by_task[task]
            out += rng.sample(pool, min(len(pool), max(1, round(total * mix[task] / weight))))
        return out

    def step(self, step: int) -> StepResult:
        cfg, sp = self.cfg, self.cfg.selfplay
        started = time.monotonic()
        seed = derive_seed(cfg.run.seed, "step", step)
        rng = random.Random(seed)
        torch.manual_seed(seed)
        sampler = batching.DynamicSampler(sp.batch_groups, sp.max_generation_batches)
        drawn: list[tuple[Any, batching.ResponderGroup, int]] = []
        generated = 0
        gen_seconds = 0.0
        while not sampler.done:
            b = sampler.batches
            items = self._draw(rng)
            ids = [self._prompt(item) for item in items]
            sampling = SamplingParams(
                temperature=cfg.sampling.temperature, top_p=cfg.sampling.top_p,
                max_new_tokens=cfg.sampling.max_response_tokens, seed=derive_seed(seed, "batch", b, "responder"),
            )
            t = time.monotonic()
            outputs = []
            if ids:
                with self.progress.phase("responder", len(ids) * sp.group_size) as reported:
                    outputs = self.engine.generate(ids, sp.group_size, sampling, progress=reported.advance)
            gen_seconds += time.monotonic() - t
            groups = []
            for item, prompt_ids, completions in zip(items, ids, outputs):
                generated += sum(len(c.token_ids) for c in completions)
                record = batching.QuestionRecord(
                    task=item.task, cluster=item.source, question=item.question, answer=item.answers[0],
                    options=item_options(item),
                )
                rewards = [score_response(item, c.text) for c in completions]
                record.rbar = sum(rewards) / len(rewards)
                group = batching.ResponderGroup(record, rewards, [Rollout(list(prompt_ids), c) for c in completions])
                groups.append(group)
                drawn.append((item, group, b))
            sampler.add_batch(groups)
            if not items:
                break

        times = {"generation": gen_seconds, "logprob": 0.0, "update": 0.0, "weight_sync": 0.0}
        update = batching.UpdateBatch(responder=list(sampler.kept), questioner=[], verifier=[],
                                      counts={"responder_groups": len(sampler.kept)})
        train_metrics: dict[str, float] = {}
        role_counts = {r: 0 for r in ROLES}
        if not update.empty:
            sequences, role_counts = update_sequences(update, unbiased_std=cfg.loss.advantage_std == "unbiased")
            train_metrics = self.updater.run(sequences, times)
        trained = {id(g) for g in update.responder}
        total = time.monotonic() - started
        metrics = self._metrics(drawn, sampler, update, train_metrics, role_counts, times, total, generated)
        samples = [s for item, g, b in drawn for s in self._samples(item, g, b, id(g) in trained)]
        return StepResult(step, metrics, samples, trained=bool(train_metrics))

    def _metrics(self, drawn, sampler, update, train, role_counts, times, total, generated) -> dict[str, Any]:
        groups = [g for _, g, _ in drawn]
        rewards = [r for g in groups for r in g.rewards]
        completions = [ro.completion for g in groups for ro in g.samples]
        model_seconds = sum(times.values())
        per_task: dict[str, Any] = {}
        for task in sorted({g.question.task for g in groups}):
            rs = [r for g in groups if g.question.task == task for r in g.rewards]
            per_task[task] = {"questions": sum(1 for g in groups if g.question.task == task),
                              "responder_reward": _mean(rs), "pass_rate": _mean([1.0 if r >= 1.0 else 0.0 for r in rs])}
        trained_tokens = train.get("tokens", 0.0)
        return {
            "mode": "rlvr",
            "reward": {"responder": _mean(rewards), "rule": _mean(rewards)},
            "pass_rate": {"responder": _mean([1.0 if r >= 1.0 else 0.0 for r in rewards]),
                          "rule": _mean([1.0 if r >= 1.0 else 0.0 for r in rewards])},
            "responder": {
                "groups": len(groups),
                "varied_groups": sum(1 for g in groups if g.varied),
                "keep_ratio": _mean([1.0 if g.varied else 0.0 for g in groups]),
                "response_tokens": _mean([len(c.token_ids) for c in completions]),
                "truncated_rate": _mean([1.0 if c.truncated else 0.0 for c in completions]),
            },
            "context_tokens": {"mean": _mean([c.prompt_tokens for c in completions]),
                               "max": max((c.prompt_tokens for c in completions), default=None)},
            "task": per_task,
            "batch": {
                "generation_batches": sampler.batches,
                "responder_groups": len(update.responder),
                "questioner_good": 0, "questioner_bad": 0, "verifier_groups": 0,
                "sequences": role_counts,
                "updated": 1 if train else 0,
            },
            "train": {
                "loss": train.get("loss"), "pg_loss": train.get("pg_loss"),
                "kl": train.get("kl", train.get("approx_kl_old")), "entropy": train.get("entropy"),
                "grad_norm": train.get("grad_norm"), "clip_fraction": train.get("clip_fraction"),
                "tokens": trained_tokens,
            },
            "throughput": {
                "generated_tokens": generated,
                "generation_tokens_per_s": generated / times["generation"] if times["generation"] > 0 else None,
                "trained_tokens_per_s": trained_tokens / times["update"] if times["update"] > 0 else None,
            },
            "time": {**{k: round(v, 4) for k, v in times.items()}, "total": round(total, 4),
                     "outside_model": round(max(total - model_seconds, 0.0), 4)},
        }

    def _samples(self, item: Any, group: batching.ResponderGroup, generation_batch: int, trained: bool) -> list[dict[str, Any]]:
        """One sample per rollout, in the self-play sample's fields (docs/events.md); the
        questioner's and the verifier's are empty."""
        q = group.question
        out = []
        for i, (rollout, reward) in enumerate(zip(group.samples, group.rewards)):
            c = rollout.completion
            out.append({
                "task": q.task, "cluster": q.cluster, "item_id": item.id, "doc_ids": [], "responder_doc_ids": [],
                "question": q.question, "reference": q.answer, "options": q.options,
                "questioner_status": None, "questioner_reason": None, "grounding_score": None,
                "memory_depth": 0, "curriculum_stage": 0, "curriculum_max_context": self.prompt_limit,
                "generation_batch": generation_batch, "rbar": q.rbar, "trained": trained,
                "rollout": i, "context_tokens": c.prompt_tokens, "response": c.text, "response_tokens": len(c.token_ids),
                "extracted_answer": extract_answer(q.task, c.text), "votes": [], "verifier_outputs": [],
                "majority": None, "verdict": "SKIPPED", "verifier_eligible": None, "rule_score": reward,
                "rewards": {"questioner": None, "responder": reward, "verifier": None},
            })
        return out


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None
