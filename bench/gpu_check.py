"""The GPU paths, run for real on one CUDA device: self-play steps through the CLI in bf16.

A machine with a GPU but no model hub gets a SmolLM2-135M-shaped model with random weights,
built here from the real model's config.json and tokenizer (the weights are ~270 MB and do not
travel): the compute and memory are the real model's, the text is not, so structured outputs
keep every role's output parseable. Runs, each a `python -m spell train` subprocess on CUDA:

  torch          the torch trainer, bf16
  ds-zero2       DeepSpeed ZeRO-2 (bf16, fp32 master weights), NCCL
  ds-zero3       DeepSpeed ZeRO-3, a checkpoint every step, then `--resume` for one more step

and prints one markdown table (first step, later steps, phase times, peak GPU memory) plus a
JSON file for docs/benchmarks.md.

    python bench/gpu_check.py --model-from ~/.cache/spell-studio/models/smollm2-135m-instruct-0.1.2
    python bench/gpu_check.py --model-from DIR --only torch --steps 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")
RUNS = {
    "torch": {"trainer.backend": "torch"},
    "ds-zero2": {"trainer.backend": "deepspeed", "trainer.zero_stage": 2},
    "ds-zero3": {"trainer.backend": "deepspeed", "trainer.zero_stage": 3},
}


def build_random_model(source: Path, dest: Path) -> Path:
    """A model folder with `source`'s architecture and tokenizer and random bf16 weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    config = AutoConfig.from_pretrained(source)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(dest)
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, dest / name)
    return dest


def train(model: Path, out: Path, steps: int, sets: dict, extra: list[str], timeout: float) -> tuple[int, float, str]:
    args = [sys.executable, "-m", "spell", "train", "--preset", "cpu-demo", "--model", str(model),
            "--corpus", str(ROOT / "samples" / "corpus" / "sample.jsonl"), "--out", str(out), "--no-progress"]
    base = {
        "trainer.device": "cuda", "trainer.num_gpus": 1, "model.dtype": "bfloat16",
        "model.gradient_checkpointing": False, "eval.at_start": False, "eval.every_steps": 0,
        "checkpoint.every_steps": 0, "run.steps": steps,
    }
    for key, value in {**base, **sets}.items():
        args += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    try:
        done = subprocess.run(args + extra, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        # TimeoutExpired carries bytes (or None) even when the run was asked for text
        tail = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else (error.stderr or "")
        return 124, time.perf_counter() - started, f"timed out after {timeout:.0f} s\n{tail[-3000:]}"
    return done.returncode, time.perf_counter() - started, done.stderr[-3000:]


def step_rows(out: Path) -> list[dict]:
    rows = []
    path = out / "events.jsonl"
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event["type"] != "metrics":
            continue
        m = event["payload"]
        t = m["time"]
        rows.append({
            "step": event["step"], "attempt": event["attempt"], "total_s": t["total"], "generation_s": t["generation"],
            "update_s": t["update"], "logprob_s": t.get("logprob"), "phases": t.get("phases"),
            "generated_tokens": m["throughput"]["generated_tokens"], "trained_tokens": m["train"]["tokens"],
            "updated": m["batch"]["updated"], "gpu": m.get("gpu"), "loss": m["train"]["loss"],
        })
    return rows


def environment() -> dict:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    for name in ("transformers", "deepspeed", "xgrammar"):
        try:
            info[name] = __import__(name).__version__
        except Exception as error:  # noqa: BLE001 - report, do not stop
            info[name] = f"missing ({type(error).__name__})"
    return info


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-from", type=Path, required=True, help="folder with the real model's config and tokenizer")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--only", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    ap.add_argument("--work", type=Path, default=Path("/tmp/spell-gpu-check"))
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--timeout", type=float, default=240, help="seconds per training run")
    args = ap.parse_args()

    results: dict = {"environment": environment(), "runs": {}}
    print(json.dumps(results["environment"]), flush=True)
    started = time.perf_counter()
    model = build_random_model(args.model_from, args.work / "model")
    print(f"random-weight model built in {time.perf_counter() - started:.1f} s", flush=True)

    for name in args.only:
        out = args.work / name
        shutil.rmtree(out, ignore_errors=True)
        sets = dict(RUNS[name])
        resume = name == "ds-zero3"
        if resume:
            sets["checkpoint.every_steps"] = 1
        rc, wall, stderr = train(model, out, args.steps, sets, [], args.timeout)
        run = {"rc": rc, "wall_s": round(wall, 1), "stderr_tail": stderr[-1500:] if rc else "", "steps": step_rows(out)}
        if resume and rc == 0:
            rc2, wall2, stderr2 = train(model, out, args.steps + 1, sets, ["--resume", "--attempt", "2"], args.timeout)
            run["resume"] = {"rc": rc2, "wall_s": round(wall2, 1), "stderr_tail": stderr2[-1500:] if rc2 else ""}
            run["steps"] = step_rows(out)
        results["runs"][name] = run
        print(f"{name}: rc {rc}, {wall:.0f} s" + (f"; resume rc {run['resume']['rc']}" if "resume" in run else ""), flush=True)
        if rc:
            print(stderr[-1500:], flush=True)

    print("\n| run | step | attempt | total (s) | generation (s) | update (s) | generated tok | trained tok | peak GPU alloc (GiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, run in results["runs"].items():
        for row in run["steps"]:
            gpu = (row["gpu"] or {}).get("peak_allocated_gib")
            print(f"| {name} | {row['step']} | {row['attempt']} | {row['total_s']:.2f} | {row['generation_s']:.2f} | "
                  f"{row['update_s']:.2f} | {row['generated_tokens']} | {row['trained_tokens']} | {gpu} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(r["rc"] == 0 and r.get("resume", {"rc": 0})["rc"] == 0 for r in results["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
