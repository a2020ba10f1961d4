"""The training loop: `python -m spell train` (nanoGPT shape: evaluate / step / checkpoint / log).

    check the inputs (config, corpus, model, checkpoint) before anything is written to OUT
    load the model (or the checkpoint's), the engine and the trainer; write config + provenance
    evaluate at step 0 (the baseline)
    for each step: SPELL step -> metrics + samples -> evaluate every N -> checkpoint every N

Determinism: every random choice of step k comes from seeds derived from (run.seed, k) (see
spell/rollout.py), the weights and optimizer state come from the checkpoint, and the curricula
(memory + length stage) are in state.json; so a run stopped after step k and resumed gives the
same step k+1 as an uninterrupted run (on CPU; GPU kernels are not bit-reproducible).

Process control (docs/architecture.md): SIGTERM stops now (exit 143); SIGUSR1 finishes the
current step, checkpoints, emits log "paused" and exits 0.

Several ranks (`python -m spell.torchrun --nproc_per_node N -m spell train ...`, which a worker
launches for trainer.num_gpus = N; NCCL on GPUs, gloo on CPU): every rank runs this same loop
with the same seeds. Each generates its share of a step's questions and receives the others'
(spell/rollout.py), so every rank builds the same update batch and metrics; each trains its shard
of it under DeepSpeed ZeRO (spell/trainers/base.py); checkpoints are written by all of them (ZeRO-3
gathers collectively, each rank saves its optimizer shard, rank 0 the rest); only rank 0 writes
events, config and provenance. Decisions that end a step (pause, time budget) are rank 0's or any
rank's, agreed by a collective, so no rank waits in a collective the others left. A checkpoint
records its world size; a resume on another one is refused.
"""

from __future__ import annotations

import functools
import json
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from spell.config import ConfigError, RunConfig, config_from_mapping, with_overrides
from spell.distributed import DataParallel
from spell.evaluation import BadInput

EXIT_CANCELLED = 143
EXIT_STARVED = 3  # steps in a row without a single question: the run cannot learn (see train())
EXIT_SUPERSEDED = 4  # a newer attempt owns the run folder (spell/rundir.py): this one stopped, writing nothing more
STARVED_STEPS = 5


@dataclass
class TrainOptions:
    corpus: Path
    out: Path
    resume: bool = False
    attempt: int = 1
    progress: bool = True  # bars on a TTY, a progress line every `log_every` s in a log
    log_every: float = 10.0
    heartbeat_s: float = 10.0


class RanksDiverged(RuntimeError):
    """Data-parallel ranks that should hold one model hold different weights (a bug, never a
    user error): the run stops rather than train on."""


class Cancelled(BaseException):
    """SIGTERM arrived: stop now.

    A BaseException, like KeyboardInterrupt, so that library code's `except Exception` blocks
    (tokenizers, torch, xgrammar callbacks) let it through instead of swallowing or wrapping it.
    """


# ---------------------------------------------------------------------------------------------
# Configuration and input checks (nothing is written before these pass)
# ---------------------------------------------------------------------------------------------


def resolve_config(
    *, config_path: str | None, preset_name: str | None, model: str | None, overrides: dict[str, Any]
) -> RunConfig:
    """--preset, then the config file (its own `preset` wins), then --model, then --set."""
    data: dict[str, Any] = {}
    if config_path:
        import tomllib

        p = Path(config_path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read config {p}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw) if p.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput(f"config {p} is not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: {exc}") from None
    if preset_name and "preset" not in data:
        data["preset"] = preset_name
    cfg = config_from_mapping(data)
    if model:
        cfg = with_overrides(cfg, {"model.path": model})
    if overrides:
        cfg = with_overrides(cfg, overrides)
    return cfg


def _check_inputs(cfg: RunConfig, options: TrainOptions) -> tuple[list[Any], int, Any, dict[str, list[Any]]]:
    """Config values, corpus, model folder and context, checkpoint: all before touching OUT."""
    from spell.data.ingest import CorpusFormatError, document_sets, read_corpus_jsonl
    from spell.models import model_max_positions
    from spell.trackers import check_report_to

    cfg.validate()
    check_report_to(cfg.run.report_to)  # a tracker's package is missing: exit 2, nothing written
    if not options.corpus.is_file():
        raise BadInput(f"corpus {options.corpus} does not exist")
    try:
        records = read_corpus_jsonl(options.corpus)
    except CorpusFormatError as exc:
        raise BadInput(f"corpus {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read corpus {options.corpus}: {exc}") from None
    m = cfg.tasks.docs_per_question
    sets = document_sets(records)
    biggest = max(len(s.documents) for s in sets)
    if biggest < m:
        raise BadInput(
            f"corpus {options.corpus}: the largest document set has {biggest} documents, fewer than "
            f"tasks.docs_per_question = {m}; add documents or lower it"
        )
    positions = model_max_positions(cfg.model.path)  # ModelError: missing / unreadable folder
    try:
        cfg.validate(model_max_positions=positions)
    except ConfigError as exc:
        raise BadInput(f"the model in {cfg.model.path} does not fit the asked context: {exc}") from None
    eval_sets = _eval_sets(cfg)
    world = DataParallel.from_environment().world
    if world > 1 and cfg.trainer.backend != "deepspeed":
        raise BadInput(f"{world} processes train one run only under trainer.backend = deepspeed (ZeRO shards the "
                       f"update and averages the gradients); trainer.backend = {cfg.trainer.backend} trains in one process")
    if world > 1 and cfg.engine.name == "vllm" and cfg.engine.tensor_parallel > 1:
        # Each rank would start its own tensor-parallel engine over the same GPUs: one engine per
        # tensor-parallel group of ranks is not built yet (docs/gpu.md).
        raise BadInput(f"engine.tensor_parallel = {cfg.engine.tensor_parallel} with {world} training processes is not "
                       "supported yet: use engine.tensor_parallel = 1 (one vLLM engine per rank), or one process")
    checkpoint = _find_checkpoint(options.out) if options.resume else None
    if checkpoint is not None:
        check_world_size(checkpoint, world)
    return records, positions, checkpoint, eval_sets


def check_world_size(checkpoint: Any, world: int) -> None:
    """A run resumes on the number of processes its checkpoint was written by (DeepSpeed's optimizer
    state is one shard per rank); another number is refused before anything loads."""
    saved = int(checkpoint.state.extra.get("world_size", 1) or 1)
    if saved != world:
        raise BadInput(f"checkpoint {checkpoint.path.name} was written by {saved} process(es) and this attempt has "
                       f"{world}: resume with {saved} (trainer.num_gpus = {saved} on a worker with that many GPUs)")


def _check_ablation_inputs(cfg: RunConfig) -> list[Any] | None:
    """The inputs only an ablation has, checked before anything is written: the external
    verifier's model folder, and the RLVR baseline's QA file (returned as items; None when the
    run is self-play)."""
    if cfg.selfplay.verifier_model.strip():
        from spell.models import model_max_positions

        model_max_positions(cfg.selfplay.verifier_model)  # ModelError: missing / unreadable folder
    if cfg.selfplay.mode != "rlvr":
        return None
    from spell.rlvr import read_rlvr_set

    return read_rlvr_set(cfg)


def _make_judge(cfg: RunConfig, dtype: Any, device: str) -> Any:
    """The external verifier (`selfplay.verifier_model`): a frozen model on the HF engine; None
    when the policy judges itself."""
    if not cfg.selfplay.verifier_model.strip():
        return None
    from spell.engines.hf import HFEngine
    from spell.models import load_model
    from spell.rollout import Judge

    model, tokenizer = load_model(cfg.selfplay.verifier_model, dtype=dtype, device=device)
    model.requires_grad_(False)
    return Judge(HFEngine(model, tokenizer, device=device, share_prefix=cfg.engine.prefix_caching), tokenizer)


# ---------------------------------------------------------------------------------------------
# Checkpoints (spell/checkpoint.py does the files; this is what goes in them)
# ---------------------------------------------------------------------------------------------


def _find_checkpoint(out: Path) -> Any:
    """The latest complete checkpoint, read and checked; None when the run has none yet (a run
    lost before its first checkpoint starts again from the beginning)."""
    from spell import checkpoint as ckpt

    root = out / "checkpoints"
    if not ckpt.list_checkpoints(root) and not (root / ckpt.LATEST).exists():
        return None
    try:
        return ckpt.load_checkpoint(root)
    except ckpt.CheckpointError as exc:
        raise BadInput(f"cannot resume: {exc}") from None


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def train(cfg: RunConfig, options: TrainOptions, *, make_engine: Callable[..., Any] | None = None) -> int:
    """Run (or resume) a training run into options.out; returns the exit code.

    `make_engine(model, tokenizer, cfg)` replaces the engine (tests wrap the HF engine)."""
    records, positions, checkpoint, eval_sets = _check_inputs(cfg, options)
    rlvr_items = _check_ablation_inputs(cfg)
    group = DataParallel.from_environment()
    world, is_main = group.world, group.is_main

    import torch

    from spell import checkpoint as ckpt
    from spell import rundir
    from spell.events import EventWriter, Superseded
    from spell.loss import policy_loss
    from spell.models import load_model
    from spell.progress import Progress
    from spell.provenance import build_provenance, write_json_atomic
    from spell.rollout import Corpus
    from spell.selfplay import SelfPlay, SelfPlayState
    from spell.trackers import Trackers

    _seed_everything(cfg.run.seed)
    model_dir = Path(checkpoint.model_dir) if checkpoint is not None else Path(cfg.model.path)
    device = "cuda" if cfg.trainer.device == "cuda" and torch.cuda.is_available() else "cpu"
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(cfg.model.dtype)
    model, tokenizer = load_model(model_dir, dtype=dtype, device=device)

    trainer = _make_trainer(cfg, model, tokenizer, device, policy_loss)
    trainer.group = group  # (the DeepSpeed trainer has started torch.distributed for several ranks)
    if make_engine is not None:
        engine = make_engine(model, tokenizer, cfg)
    else:
        engine = _make_engine(cfg, model, tokenizer, device, trainer)
    corpus = Corpus.from_records(records, lambda texts: [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts])
    state = SelfPlayState.from_config(cfg)
    ref_model = None
    if cfg.loss.kl_coef > 0:  # the reference is the starting policy, frozen
        ref_model, _ = load_model(cfg.model.path, dtype=dtype, device=device)
        ref_model.requires_grad_(False)
    start_step, best = 0, None
    if checkpoint is not None:
        saved = checkpoint.state
        try:
            trainer.load_optimizer(checkpoint.optimizer_folder())
            state.memory.load_state_dict(saved.memory)
            state.curriculum.load_state_dict(saved.curriculum)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise BadInput(f"cannot resume from {checkpoint.path}: {type(exc).__name__}: {exc}") from None
        start_step = int(saved.step)
        best = saved.extra.get("best")
        if saved.rng:
            ckpt.restore_rng_state(saved.rng)
    # Work inside a step and an evaluation: progress events (once the writer exists) and, on rank
    # 0, bars on a TTY or a line every few seconds in a log.
    progress = Progress(console="auto" if options.progress and is_main else "off", log_every=options.log_every)
    if rlvr_items is not None:  # the RLVR baseline: the responder alone on a fixed QA file
        from spell.rlvr import RLVRStep

        selfplay = RLVRStep(cfg, engine, trainer, tokenizer, rlvr_items, positions, state, ref_model=ref_model,
                            recompute_old_logprobs=cfg.engine.name != "hf", progress=progress)
    else:
        selfplay = SelfPlay(
            cfg, engine, trainer, tokenizer, corpus, positions, state, ref_model=ref_model,
            recompute_old_logprobs=cfg.engine.name != "hf", judge=_make_judge(cfg, dtype, device),
            progress=progress, group=group,
        )

    out = options.out
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        held = rundir.owner(out)
        if held is not None and held != options.attempt:
            raise Superseded(f"attempt {options.attempt}: the run folder {out} belongs to attempt {held}")
        write_json_atomic(out / "config.json", cfg.to_dict())
        write_json_atomic(
            out / "provenance.json",
            build_provenance(
                config=cfg.to_dict(), seed=cfg.run.seed, corpus_path=options.corpus, model_path=str(cfg.model.path),
                attempt=options.attempt, extra={"world_size": world, "resumed_from_step": start_step if checkpoint else None},
            ),
        )
    events = EventWriter(out / "events.jsonl", options.attempt, enabled=is_main)
    events.step = start_step
    # run.report_to: every metrics / eval / stage event the writer emits also goes to TensorBoard,
    # W&B or MLflow (rank 0 only: other ranks' writers are disabled).
    trackers = Trackers.from_config(cfg, out, attempt=options.attempt, start_step=start_step, events=events)
    progress.events = events
    events.start_heartbeat(options.heartbeat_s)
    pause = {"requested": False, "cancelled": False}
    previous = _install_signals(pause)

    last_eval = None
    try:
        events.log(
            f"resumed from step {start_step}" if checkpoint else "started",
            step=start_step, attempt=options.attempt, world_size=world, model=str(model_dir),
        )
        events.emit("stage", _stage_payload(state, "start"), step=start_step)
        clock = _TimeBudget(cfg.run.time_budget_minutes)
        if start_step == 0 and cfg.eval.at_start and eval_sets:
            best, last_eval = _evaluate(cfg, engine, tokenizer, eval_sets, events, progress, 0, best)
            clock.evaluated(last_eval["seconds"])
        if start_step == 0 and cfg.warmup.enabled and rlvr_items is None:
            best, last_eval = _warm_up(cfg, trainer, engine, tokenizer, corpus, eval_sets, events, progress, best, last_eval)
            if last_eval is not None:
                clock.evaluated(last_eval["seconds"])
        bar = _bar(cfg.run.steps, start_step, progress.console == "bars")
        starved = 0
        for step in range(start_step + 1, cfg.run.steps + 1):
            if clock.stop_before_next_step():
                events.log("time budget reached", level="warning", step=step - 1,
                           budget_minutes=cfg.run.time_budget_minutes, steps_done=step - 1 - start_step)
                if cfg.eval.every_steps and eval_sets and (last_eval is None or last_eval.get("step") != step - 1):
                    best, last_eval = _evaluate(cfg, engine, tokenizer, eval_sets, events, progress, step - 1, best)
                if step - 1 > start_step:
                    _save(cfg, out, step - 1, trainer, tokenizer, state, best, last_eval, events, group)
                bar.close()
                events.log("finished", step=step - 1, reason="time budget")
                return 0
            clock.step_started()
            events.step = step
            result = selfplay.step(step)
            clock.step_finished()  # the step alone: evaluations are reserved for separately
            events.emit("metrics", result.metrics, step=step)
            questions = (result.metrics.get("questioner") or {}).get("samples")
            starved = starved + 1 if questions == 0 else 0
            if starved:
                skipped = (result.metrics.get("batch") or {}).get("skipped_clusters")
                events.log(f"step {step} had no question", level="warning", skipped_clusters=skipped)
            if starved >= STARVED_STEPS:
                # A step without questions trains nothing; going on would only report progress.
                message = (f"no question in {starved} steps in a row (steps {step - starved + 1}-{step}): every "
                           "document set was over the prompt limit. Set memory.overflow = fit, lower "
                           "tasks.docs_per_question or raise sampling.max_prompt_tokens")
                events.error(message, kind="starved")
                print(f"spell train: error: {message}", file=sys.stderr)
                return EXIT_STARVED
            for sample in result.samples:
                events.emit("sample", sample, step=step)
            if result.promoted:
                events.emit("stage", _stage_payload(state, "promoted"), step=step)
            if cfg.eval.every_steps and step % cfg.eval.every_steps == 0 and eval_sets:
                best, last_eval = _evaluate(cfg, engine, tokenizer, eval_sets, events, progress, step, best)
                clock.evaluated(last_eval["seconds"])
            last = step == cfg.run.steps
            # A pause asked of any rank pauses all of them, after the same step (the signal
            # reaches each rank at its own moment).
            pause["requested"] = bool(group.max([1.0 if pause["requested"] else 0.0])[0])
            due = (cfg.checkpoint.every_steps and step % cfg.checkpoint.every_steps == 0) or last or pause["requested"]
            if due:
                _save(cfg, out, step, trainer, tokenizer, state, best, last_eval, events, group)
            bar.update(1)
            bar.set_postfix_str(_postfix(result.metrics))
            if progress.console == "lines":  # a log: one line a step (a bar's redraws would fill it)
                print(f"spell: step {step}/{cfg.run.steps} done, {_postfix(result.metrics)}", file=sys.stderr, flush=True)
            if pause["requested"] and not last:
                events.log("paused", step=step)
                return 0
        bar.close()
        events.log("finished", step=cfg.run.steps)
        return 0
    except Cancelled:
        events.log("cancelled", level="warning")
        return EXIT_CANCELLED
    except Exception as exc:
        if pause["cancelled"]:
            # The signal landed inside code that turned Cancelled into another error (a C
            # extension's callback, a context manager's __exit__): it is still a cancel.
            events.log("cancelled", level="warning", during=f"{type(exc).__name__}: {exc}"[:500])
            return EXIT_CANCELLED
        events.error(f"{type(exc).__name__}: {exc}", kind="crash")
        raise
    finally:
        _restore_signals(previous)
        trackers.close()
        events.close()
        engine.close()


def _make_trainer(cfg: RunConfig, model: Any, tokenizer: Any, device: str, policy_loss: Any) -> Any:
    from spell.trainers.base import TrainerSettings

    settings = TrainerSettings.from_run_config(cfg, pad_token_id=tokenizer.pad_token_id or 0)
    settings.compute_entropy = True  # reported every step (the loss uses it only with entropy_coef > 0)
    loss = functools.partial(
        policy_loss, clip=cfg.loss.clip, aggregation=cfg.loss.aggregation, kl_coef=cfg.loss.kl_coef,
        kl_estimator=cfg.loss.kl_estimator, entropy_coef=cfg.loss.entropy_coef, dual_clip=cfg.loss.dual_clip,
    )
    if cfg.trainer.backend == "deepspeed":
        from spell.trainers.deepspeed_trainer import DeepSpeedTrainer

        return DeepSpeedTrainer(model, loss, settings, device=device)
    from spell.trainers.torch_trainer import TorchTrainer

    return TorchTrainer(model, loss, settings, device=device)


def _make_engine(cfg: RunConfig, model: Any, tokenizer: Any, device: str, trainer: Any) -> Any:
    if cfg.engine.name == "vllm":
        from spell.engines.vllm_engine import VLLMEngine

        return VLLMEngine.from_run_config(cfg)
    from spell.engines.hf import HFEngine

    return HFEngine(model, tokenizer, device=device, share_prefix=cfg.engine.prefix_caching,
                    generation_context=trainer.generation_context)


def _save(cfg, out, step, trainer, tokenizer, state, best, last_eval, events, group) -> None:
    """Write checkpoint step-NNNNNN (model, optimizer, curricula, RNG), move `latest`, apply
    retention (newest K + best by eval), and tell the worker. Every rank calls it (see
    spell.checkpoint.save_checkpoint); with several, each rank's weights digest goes in the
    checkpoint event and ranks that disagree are an error."""
    from spell import checkpoint as ckpt

    if group.is_main:
        events.check_owner()  # retention deletes checkpoints: never on behalf of a superseded attempt
    before = {p.name for p in ckpt.list_checkpoints(out / "checkpoints")}
    training_state = ckpt.TrainingState(
        step=step,
        config=cfg.to_dict(),
        curriculum=state.curriculum.state_dict(),
        memory=state.memory.state_dict(),
        # Every random choice of a step is derived from (seed, step): the step is the position.
        data_position={"next_step": step + 1},
        rng=ckpt.capture_rng_state(),
        # Scored only when the evaluation ran on exactly these weights.
        eval_score=last_eval["mean"] if last_eval and last_eval["step"] == step else None,
        extra={"best": best, "world_size": group.world},
    )
    full = getattr(trainer, "full_state_dict", None)  # ZeRO-3 gathers the sharded weights (every rank)
    digests = group.gather(trainer.weights_digest()) if group.several else None
    path = ckpt.save_checkpoint(
        out / "checkpoints", training_state, trainer.model, tokenizer,
        save_optimizer=trainer.save_optimizer, model_state_dict=full() if full else None,
        keep_last=cfg.checkpoint.keep_last, keep_best=cfg.checkpoint.keep_best, group=group,
    )
    after = {p.name for p in ckpt.list_checkpoints(out / "checkpoints")}
    payload = {"path": str(path), "name": path.name, "eval_score": training_state.eval_score,
               "removed": sorted(before - after), "kept": sorted(after)}
    if digests is not None:
        payload.update(world_size=group.world, weights_digest_per_rank=digests)
    events.emit("checkpoint", payload, step=step)
    if digests is not None and len(set(digests)) > 1:  # every rank sees it, so every rank stops
        raise RanksDiverged(f"the ranks hold different weights after step {step} (digests {digests}): the run is no "
                            "longer one model; resume from an earlier checkpoint")


def _eval_sets(cfg: RunConfig) -> dict[str, list[Any]]:
    from spell.evaluation import read_sets

    return read_sets(cfg.eval.sets) if cfg.eval.sets else {}


def _warm_up(cfg, trainer, engine, tokenizer, corpus, eval_sets, events, progress, best, last_eval):
    """The supervised warm-up before step 1 (spell/warmup.py), logged; then, when the run
    evaluated at step 0, an evaluation marked `after_warmup`, so the warm-up's gain is told apart
    from self-play's. Returns (best, last evaluation)."""
    from spell.update import weight_sync
    from spell.warmup import run_warmup

    events.log("warm-up started", step=0)
    done = run_warmup(trainer, tokenizer, corpus, cfg, progress=progress)
    weight_sync(engine, trainer)()
    events.log("warm-up finished", step=0, **done)
    if last_eval is None or not eval_sets:
        return best, last_eval
    return _evaluate(cfg, engine, tokenizer, eval_sets, events, progress, 0, best, after_warmup=True)


def _evaluate(cfg, engine, tokenizer, sets, events, progress, step, best, *, after_warmup: bool = False) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Evaluate, emit the `eval` event; return (best so far, this evaluation's {step, mean})."""
    from spell.config import role_max_tokens
    from spell.evaluation import EvalOptions, evaluate

    # The responder's own prompt, decoding and length, so the curve measures what is trained.
    options = EvalOptions(
        k=cfg.eval.samples, max_input_tokens=cfg.eval.max_input_tokens, max_new_tokens=role_max_tokens(cfg, "responder"),
        temperature=cfg.sampling.temperature, top_p=cfg.sampling.top_p, seed=cfg.run.seed,
        prompt_style=cfg.prompts.style, answer_grammar=cfg.structured.responder,
        one_line_answer=cfg.structured.responder and cfg.structured.grounded,
    )
    results = evaluate(engine, tokenizer, sets, options, progress=progress, step=step)
    if after_warmup:
        results["after_warmup"] = True
    events.emit("eval", results, step=step)
    this = {"step": step, "mean": results["mean"], "seconds": results["seconds"]}
    if results["mean"] is not None and (best is None or results["mean"] > best["mean"]):
        return this, this
    return best, this


class _TimeBudget:
    """run.time_budget_minutes: a step starts only when the slowest step so far, and then the
    slowest evaluation so far (the final one), would still end inside the budget (the clock starts
    with this attempt). Every rank takes rank 0's decision, so all of them stop before the same step."""

    def __init__(self, minutes: float):
        self.deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
        self.slowest = 0.0
        self.slowest_eval = 0.0
        self._started = 0.0

    def evaluated(self, seconds: float) -> None:
        self.slowest_eval = max(self.slowest_eval, seconds)

    def step_started(self) -> None:
        self._started = time.monotonic()

    def step_finished(self) -> None:
        self.slowest = max(self.slowest, time.monotonic() - self._started)

    def stop_before_next_step(self) -> bool:
        if self.deadline is None:
            return False
        stop = time.monotonic() + self.slowest + self.slowest_eval > self.deadline
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            import torch

            flag = torch.tensor([1 if stop else 0], device="cuda" if dist.get_backend() == "nccl" else "cpu")
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop


def _stage_payload(state: Any, reason: str) -> dict[str, Any]:
    c = state.curriculum
    return {"reason": reason, "stage": c.stage, "max_context": c.max_context, "stages": list(c.stages), "rolling_accuracy": c.rolling_accuracy}


def _install_signals(pause: dict[str, bool]) -> dict[int, Any]:
    def on_term(signum, frame):  # noqa: ARG001
        pause["cancelled"] = True
        raise Cancelled()

    def on_usr1(signum, frame):  # noqa: ARG001
        pause["requested"] = True

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}
    if hasattr(signal, "SIGUSR1"):
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_usr1)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="spell train", unit="step", disable=not enabled, file=sys.stderr)


def _postfix(m: dict[str, Any]) -> str:
    r = m.get("reward", {})
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    return f"r_res={fmt(r.get('responder'))} r_que={fmt(r.get('questioner'))} t={m.get('time', {}).get('total', 0):.0f}s"
