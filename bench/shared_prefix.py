"""Shared-prefix rollouts vs plain batched generate, on SmolLM2-135M-Instruct (CPU).

n continuations of one ~2,048-token prompt: plain `generate` pre-fills the prompt n times; the
HF engine pre-fills it once and repeats the KV cache. Greedy outputs must match.

    .venv/bin/python bench/shared_prefix.py [--prompt-tokens 2048] [--n 8] [--new 32 64 256]
    python bench/shared_prefix.py --device cuda --model-dir DIR   # a GPU, bf16 (bench/gpu_check.sh)
"""

from __future__ import annotations

import argparse
import time

import torch

from spell.engines.base import SamplingParams
from spell.engines.hf import HFEngine
from spell.models import SMOLLM2, load_model, prepare_model

FILLER = (
    "The committee reviewed the quarterly report, noting that revenue grew in the northern "
    "region while costs in logistics rose faster than planned. "
)


def long_prompt(tokenizer, target_tokens: int) -> list[int]:
    """A chat prompt of exactly `target_tokens` tokens (document text trimmed to fit)."""
    document_ids = tokenizer(FILLER * (target_tokens // 20 + 10))["input_ids"]
    head = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Summarise the document.\n\n"}], add_generation_prompt=False, return_dict=False
    )
    tail = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], add_generation_prompt=True, return_dict=False
    )[-4:]
    body = target_tokens - len(head) - len(tail)
    return head + document_ids[:body] + tail


def timed(engine: HFEngine, prompt: list[int], n: int, new_tokens: int):
    sampling = SamplingParams(temperature=0.0, max_new_tokens=new_tokens)
    started = time.perf_counter()
    completions = engine.generate([prompt], n, sampling)[0]
    return time.perf_counter() - started, [c.token_ids for c in completions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, default=2048)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--new", type=int, nargs="+", default=[32, 64, 256])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model-dir", help="a model folder (default: SmolLM2-135M-Instruct, prepared)")
    args = parser.parse_args()

    dtype = torch.bfloat16 if args.device == "cuda" else None
    model, tokenizer = load_model(args.model_dir or prepare_model(SMOLLM2), dtype=dtype, device=args.device)
    prompt = long_prompt(tokenizer, args.prompt_tokens)
    plain = HFEngine(model, tokenizer, device=args.device, share_prefix=False)
    shared = HFEngine(model, tokenizer, device=args.device, share_prefix=True)
    timed(shared, prompt[:64], 2, 2)  # warm-up

    rows = []
    for new_tokens in args.new:
        plain_s, plain_ids = timed(plain, prompt, args.n, new_tokens)
        shared_s, shared_ids = timed(shared, prompt, args.n, new_tokens)
        rows.append((new_tokens, plain_s, shared_s, plain_ids == shared_ids))
        print(f"  new={new_tokens}: plain {plain_s:.1f} s, shared {shared_s:.1f} s", flush=True)

    where = torch.cuda.get_device_name(0) + ", bf16" if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads), fp32"
    print(f"\n{args.model_dir or 'SmolLM2-135M-Instruct'}, {where}, {len(prompt)}-token prompt, n={args.n}, greedy\n")
    print("| new tokens | plain generate (s) | shared prefix (s) | speed-up | greedy outputs identical |")
    print("|---:|---:|---:|---:|:---:|")
    for new_tokens, plain_s, shared_s, same in rows:
        print(f"| {new_tokens} | {plain_s:.1f} | {shared_s:.1f} | {plain_s / shared_s:.1f}x | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
