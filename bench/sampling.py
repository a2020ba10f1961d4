"""Cost of one sampling step (temperature 0.7, top-p 0.95) over SmolLM2's 49,152-token vocabulary:
transformers' warpers + multinomial against spell's NucleusSampler, for a few batch widths.

The logits are SmolLM2's own for a real prompt (peaked, as a trained model's are), repeated per row;
`--random` uses flat random logits instead (a random model: the sampler falls back to a full sort).

    .venv/bin/python bench/sampling.py [--rows 3 12 48] [--random]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import TemperatureLogitsWarper, TopPLogitsWarper

from spell.engines.sampling import NucleusSampler


def logits_for(rows: int, random: bool) -> torch.Tensor:
    if random:
        return torch.randn(rows, 49152)
    from spell.models import SMOLLM2, load_model, prepare_model

    model, tokenizer = load_model(prepare_model(SMOLLM2))
    ids = tokenizer("The committee reviewed the quarterly report and noted that", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        last = model(ids).logits[0, -1].float()
    return last.repeat(rows, 1)


def per_call(fn, repeat: int = 20) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[3, 12, 48])
    ap.add_argument("--random", action="store_true")
    args = ap.parse_args()
    base = logits_for(1, args.random)
    temperature, top_p = TemperatureLogitsWarper(0.7), TopPLogitsWarper(0.95)
    sampler = NucleusSampler(0.7, 0.95)

    def hf(scores):
        return torch.multinomial(torch.softmax(top_p(None, temperature(None, scores.clone())), dim=-1), 1)

    print(f"\n{'random' if args.random else 'SmolLM2'} logits, CPU ({torch.get_num_threads()} threads), temperature 0.7, top-p 0.95\n")
    print("| rows | transformers warpers + multinomial | NucleusSampler | speed-up |")
    print("|---:|---:|---:|---:|")
    for rows in args.rows:
        scores = base.expand(rows, -1).contiguous()
        if args.random:
            scores = torch.randn(rows, base.shape[-1])
        theirs = per_call(lambda: hf(scores))
        ours = per_call(lambda: sampler(None, scores))
        print(f"| {rows} | {theirs * 1000:.1f} ms | {ours * 1000:.1f} ms | {theirs / ours:.1f}x |")


if __name__ == "__main__":
    main()
