"""Command line: `python -m spell train | eval | prepare-model`.

    python -m spell train --config run.toml --corpus corpus.jsonl --out DIR [--resume] [--attempt N]
                          [--preset cpu-demo] [--model DIR] [--set section.key=value ...]
    python -m spell eval (--model DIR | --checkpoint DIR) --eval-set FILE [--eval-set FILE ...] [--k 8]
                          [--max-input-tokens N] [--limit N] [--out results.json]
    python -m spell prepare-model [--tiny] [--dest DIR]

Exit codes (docs/architecture.md): 0 finished or paused, 2 bad input (one line on stderr, nothing
in OUT lost or half-written), 3 starved (no question in 5 steps), 4 superseded (a newer attempt owns
OUT: spell/rundir.py), 143 cancelled by SIGTERM, anything else a crash. Progress goes to
stderr: bars on a terminal, a line every --log-every seconds otherwise (a log file); the
machine-readable record of a run is OUT/events.jsonl (its `progress` events included).

Several GPUs: `deepspeed --num_gpus N -m spell train ...`. The launcher sets LOCAL_RANK / RANK /
WORLD_SIZE; only rank 0 writes events and checkpoints (see spell/train.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, Sequence

from spell.events import Superseded
from spell.train import EXIT_CANCELLED, EXIT_SUPERSEDED, Cancelled


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """`section.key=value` pairs; the value is read as TOML (4, 0.5, true, [1024, 2048], "x") and
    as a plain string when it is not valid TOML (`model.path=var/models/x`)."""
    from spell.evaluation import BadInput

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set {item!r}: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spell", description="SPELL self-play training.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="run SPELL self-play steps and write OUT/events.jsonl")
    t.add_argument("--config", help="run.toml or run.json (sections of fields; may name a preset)")
    t.add_argument("--corpus", required=True, help="corpus JSON lines (id, text, cluster, numeric)")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest")
    t.add_argument("--attempt", type=int, default=1, help="attempt number written into every event")
    t.add_argument("--preset", help="base preset (cpu-demo, paper-7b) under the config file")
    t.add_argument("--model", help="model folder (overrides model.path)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one field, e.g. --set selfplay.group_size=4 (repeatable)")
    t.add_argument("--no-progress", action="store_true", help="no progress on stderr (bars or lines)")
    t.add_argument("--log-every", type=float, default=10.0, metavar="SECONDS",
                   help="when stderr is not a terminal: a progress line at most this often")

    e = sub.add_parser("eval", help="evaluate a model on evaluation sets (mean@k, pass@k)")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model folder")
    src.add_argument("--checkpoint", help="checkpoint folder (with model/) or a run's checkpoints/ folder")
    e.add_argument("--eval-set", dest="sets", action="append", metavar="FILE",
                   help="evaluation set file: LongBench-v2 json, LongBench QA jsonl, DocMath json (repeatable)")
    # The old name; `train --set` means KEY=VALUE, so this one is kept only for old scripts.
    e.add_argument("--set", dest="old_sets", action="append", default=[], metavar="FILE", help=argparse.SUPPRESS)
    e.add_argument("--k", type=int, default=8, help="samples per question")
    e.add_argument("--max-input-tokens", type=int, default=None,
                   help="middle-truncate inputs to this (default: the model's positions less --max-new-tokens)")
    e.add_argument("--max-new-tokens", type=int, default=512, help="longest answer")
    e.add_argument("--temperature", type=float, default=0.7)
    e.add_argument("--top-p", type=float, default=0.95)
    e.add_argument("--limit", type=int, default=None, help="only the first N items of each set")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--prompt-style", choices=("release", "small"), default="release",
                   help="responder prompt wording: release (paper-7b) or small (cpu-demo)")
    e.add_argument("--answer-line", action="store_true",
                   help="as cpu-demo's responder: one answer line under its grammar (needs --prompt-style small)")
    e.add_argument("--out", help="write the results as JSON here (else stdout only)")
    e.add_argument("--no-progress", action="store_true", help="no progress on stderr (bars or lines)")
    e.add_argument("--log-every", type=float, default=10.0, metavar="SECONDS",
                   help="when stderr is not a terminal: a progress line at most this often")

    p = sub.add_parser("prepare-model", help="build the SmolLM2 (or tiny random) model folder")
    p.add_argument("--tiny", action="store_true", help="the tiny random Qwen2 for tests")
    p.add_argument("--dest", help="folder under which model folders are built")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "prepare-model":
            return _prepare_model(args)
    except KeyboardInterrupt:
        print("spell: interrupted", file=sys.stderr)
        return 130
    except Cancelled:  # SIGTERM outside the training loop's own try block
        print("spell: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except Superseded as exc:  # the worker started a newer attempt in this run folder
        print(f"spell {args.command}: stopped: {exc}", file=sys.stderr)
        return EXIT_SUPERSEDED
    except Exception as exc:  # noqa: BLE001 - bad input becomes exit 2, the rest re-raises
        if _is_bad_input(exc):
            print(f"spell {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        raise
    return 2


def _is_bad_input(exc: BaseException) -> bool:
    from spell.config import ConfigError
    from spell.evaluation import BadInput
    from spell.models import ModelError

    kinds: tuple[type, ...] = (ConfigError, BadInput, ModelError)
    try:
        from spell.checkpoint import CheckpointError

        kinds += (CheckpointError,)
    except ImportError:
        pass
    return isinstance(exc, kinds)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _train(args: argparse.Namespace) -> int:
    from spell.train import TrainOptions, resolve_config, train

    cfg = resolve_config(
        config_path=args.config, preset_name=args.preset, model=args.model, overrides=_parse_set(args.overrides)
    )
    options = TrainOptions(
        corpus=Path(args.corpus),
        out=Path(args.out),
        resume=args.resume,
        attempt=args.attempt,
        progress=not args.no_progress,
        log_every=args.log_every,
    )
    return train(cfg, options)


def _eval(args: argparse.Namespace) -> int:
    from spell.evaluation import BadInput, EvalOptions, evaluate_cli

    if args.old_sets:
        print("spell eval: warning: --set FILE is now --eval-set FILE (--set still works for now)", file=sys.stderr)
    paths = (args.sets or []) + args.old_sets
    if not paths:
        raise BadInput("name at least one evaluation set: --eval-set FILE")
    results = evaluate_cli(
        model=args.model,
        checkpoint=args.checkpoint,
        set_paths=[Path(p) for p in paths],
        options=EvalOptions(
            k=args.k,
            max_input_tokens=args.max_input_tokens,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            limit=args.limit,
            seed=args.seed,
            prompt_style=args.prompt_style,
            answer_grammar=args.answer_line,
            one_line_answer=args.answer_line,
        ),
        progress=not args.no_progress,
        log_every=args.log_every,
    )
    text = json.dumps(results, indent=2)
    if args.out:
        from spell.provenance import write_json_atomic

        write_json_atomic(args.out, results)
    print(text)
    return 0


def _prepare_model(args: argparse.Namespace) -> int:
    from spell.models import SMOLLM2, TINY_RANDOM, prepare_model

    folder = prepare_model(TINY_RANDOM if args.tiny else SMOLLM2, args.dest)
    print(folder)
    return 0
