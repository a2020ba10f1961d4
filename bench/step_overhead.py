"""Share of a SPELL step's time spent outside model compute (target: under 5%).

Runs `--steps` self-play steps in-process and reports, per step, the time of generation, log-prob
recomputation, update and weight sync (model compute) against the step's wall time; the rest is
prompt building, parsing, rewards, batching and bookkeeping. Also prints the questioner parse rate.

    .venv/bin/python bench/step_overhead.py --model tiny            # tiny random model (seconds)
    .venv/bin/python bench/step_overhead.py --model smollm2 --steps 1 [--no-structured]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from spell.events import read_events
    from spell.models import SMOLLM2, TINY_RANDOM, prepare_model
    from spell.train import TrainOptions, resolve_config, train

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--corpus", default=str(ROOT / "samples" / "corpus" / "sample.jsonl"))
    ap.add_argument("--no-structured", action="store_true", help="structured outputs off for questioner and verifier")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", help="keep the run directory here (events.jsonl with every sample) instead of a temporary one")
    args = ap.parse_args()
    model = prepare_model(TINY_RANDOM if args.model == "tiny" else SMOLLM2)
    overrides = {"run.steps": args.steps, "eval.at_start": False, "checkpoint.every_steps": 0}
    if args.no_structured:
        overrides.update({"structured.questioner": False, "structured.verifier": False})
    from spell.cli import _parse_set

    overrides.update(_parse_set(args.overrides))
    cfg = resolve_config(config_path=None, preset_name="cpu-demo", model=str(model), overrides=overrides)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        train(cfg, TrainOptions(corpus=Path(args.corpus), out=out, progress=False))
        metrics = [e["payload"] for e in read_events(out / "events.jsonl") if e["type"] == "metrics"]
    rows = []
    for i, m in enumerate(metrics, 1):
        t = m["time"]
        rows.append({
            "step": i, "total_s": t["total"], "generation_s": t["generation"], "update_s": t["update"],
            "logprob_s": t["logprob"], "weight_sync_s": t["weight_sync"], "outside_model_s": t["outside_model"],
            "outside_model_share": t["outside_model_share"], "questioner_parse_rate": m["questioner"]["parse_rate"],
            "questioner_samples": m["questioner"]["samples"], "updated": m["batch"]["updated"],
            "generated_tokens": m["throughput"]["generated_tokens"],
            "phases_s": t.get("phases"), "trained_tokens": m["train"]["tokens"],
            "sequences": m["batch"]["sequences"], "responder_groups": m["batch"]["responder_groups"],
            "questioner_reasons": m["questioner"],
        })
    print(json.dumps({"model": args.model, "structured": not args.no_structured, "steps": rows}, indent=1))


if __name__ == "__main__":
    main()
