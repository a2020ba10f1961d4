"""Rollout throughput of VLLMEngine: shared-prefix sampling with and without prefix caching.

Run with the vllm env's python (vLLM spawns processes, hence the __main__ guard):

    PYTHONPATH=. $(scripts/vllm_cpu_env.sh) bench/vllm_rollout.py MODEL_DIR \
        [--prompt-tokens 1500] [--n 8] [--new-tokens 32] [--dtype float32]

Prints one JSON line per configuration: load seconds, generation seconds, generated tok/s and
the time to push the model's weights once (sync_weights).
"""

from __future__ import annotations

import argparse
import json
import time


def one(model: str, prefix_caching: bool, args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spell.engines.base import SamplingParams
    from spell.engines.vllm_engine import VLLMEngine

    tok = AutoTokenizer.from_pretrained(model)
    words = ("the river bank near the old mill was quiet in the evening " * 400).split()
    prompt = tok.encode(" ".join(words))[: args.prompt_tokens]
    t0 = time.perf_counter()
    engine = VLLMEngine(
        model,
        dtype=args.dtype,
        prefix_caching=prefix_caching,
        max_model_len=args.prompt_tokens + args.new_tokens + 16,
    )
    load = time.perf_counter() - t0
    try:
        sampling = SamplingParams(temperature=0.7, top_p=0.95, max_new_tokens=args.new_tokens, seed=0)
        t0 = time.perf_counter()
        out = engine.generate([prompt], n=args.n, sampling=sampling)
        gen = time.perf_counter() - t0
        tokens = sum(len(c.token_ids) for c in out[0])
        hf = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        t0 = time.perf_counter()
        engine.sync_weights(hf.state_dict())
        push = time.perf_counter() - t0
    finally:
        engine.close()
    return {
        "prefix_caching": prefix_caching,
        "prompt_tokens": len(prompt),
        "n": args.n,
        "generated_tokens": tokens,
        "load_s": round(load, 1),
        "generate_s": round(gen, 2),
        "tok_s": round(tokens / gen, 1),
        "push_s": round(push, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--prompt-tokens", type=int, default=1500)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--only", choices=["on", "off"], default=None)
    args = parser.parse_args()
    for caching in (True, False):
        if args.only and (args.only == "on") != caching:
            continue
        print(json.dumps(one(args.model, caching, args)), flush=True)


if __name__ == "__main__":
    main()
