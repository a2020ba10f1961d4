"""Per-token cost of grammar-constrained decoding (xgrammar) in the HF engine, against plain decoding.

The questioner's and verifier's outputs are constrained to a JSON schema; this measures what the
constraint adds per decoding step, for a batch of prompts like a questioner phase's, and with
`--profile` prints where a constrained generate spends its time (torch.profiler, top ops).

    .venv/bin/python bench/structured_overhead.py                      # SmolLM2, CPU
    python bench/structured_overhead.py --device cuda --model-dir DIR --profile
"""

from __future__ import annotations

import argparse
import time

import torch

from spell import prompts
from spell.engines.base import SamplingParams
from spell.engines.hf import HFEngine
from spell.models import SMOLLM2, load_model, prepare_model

FILLER = "The survey team measured the river's flow at three stations and logged the readings. "


def timed(engine: HFEngine, prompts_ids: list[list[int]], sampling: SamplingParams) -> tuple[float, int]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = engine.generate(prompts_ids, 1, sampling)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started, sum(len(c.token_ids) for group in out for c in group)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--model-dir", help="a model folder (default: SmolLM2-135M-Instruct, prepared)")
    ap.add_argument("--batch", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=1500)
    ap.add_argument("--new", type=int, default=160)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    dtype = torch.bfloat16 if args.device == "cuda" else None
    model, tokenizer = load_model(args.model_dir or prepare_model(SMOLLM2), dtype=dtype, device=args.device)
    engine = HFEngine(model, tokenizer, device=args.device, share_prefix=True)
    text_ids = tokenizer(FILLER * (args.prompt_tokens // 15 + 5), add_special_tokens=False)["input_ids"]
    batch = [text_ids[i : i + args.prompt_tokens] for i in range(args.batch)]
    schema = prompts.questioner_schema(sorted(prompts._TASK_BRIEF)[0])
    # min_new_tokens is not a knob; a JSON string that closes early ends a constrained row sooner,
    # so per-step time divides by the tokens actually generated.
    plain = SamplingParams(temperature=1.0, max_new_tokens=args.new)
    constrained = SamplingParams(temperature=1.0, max_new_tokens=args.new, json_schema=schema)
    timed(engine, [batch[0][:32]], constrained)  # compile the grammar and any kernels once

    rows = []
    for label, sampling in (("plain", plain), ("json schema", constrained)):
        for _ in range(args.repeat):
            seconds, tokens = timed(engine, batch, sampling)
            rows.append((label, seconds, tokens))
            print(f"  {label}: {seconds:.2f} s, {tokens} tokens", flush=True)

    where = f"{torch.cuda.get_device_name(0)}, bf16" if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\n{args.model_dir or 'SmolLM2-135M-Instruct'}, {where}, batch {args.batch} x {args.prompt_tokens} tokens, "
          f"up to {args.new} new, temperature 1\n")
    print("| decoding | seconds | tokens | ms per step (tokens / batch) |")
    print("|---|---:|---:|---:|")
    for label, seconds, tokens in rows:
        print(f"| {label} | {seconds:.2f} | {tokens} | {1000 * seconds / max(tokens / args.batch, 1):.1f} |")

    if args.profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if args.device == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            timed(engine, batch, constrained)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
