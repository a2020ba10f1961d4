"""Trained tokens per second: our PolicyTrainer vs TRL's GRPOTrainer loss step, responder role only.

Both train the same model on the same prompts and the same generated tokens (generated once by
our HF engine, so generation is out of the comparison) with the same advantages: one optimizer
step over the batch, timed after a warm-up step.

TRL must be installed into .venv without changing torch (`pip install trl --no-deps` plus its
small deps); if it is missing the script says so and measures only our trainer.

    .venv/bin/python bench/trl_compare.py --model tiny|smollm2 --groups 4 --group-size 4 --new-tokens 64
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    from spell import prompts
    from spell.advantages import group_zscore
    from spell.engines.base import SamplingParams
    from spell.engines.hf import HFEngine
    from spell.loss import policy_loss
    from spell.models import SMOLLM2, TINY_RANDOM, load_model, prepare_model
    from spell.trainers.base import TrainerSettings, TrainSequence
    from spell.trainers.torch_trainer import TorchTrainer

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    path = prepare_model(TINY_RANDOM if args.model == "tiny" else SMOLLM2)
    model, tok = load_model(path)
    docs = [l for l in (ROOT / "samples" / "corpus" / "sample.jsonl").read_text().splitlines()[: args.groups]]
    texts = [json.loads(d)["text"] for d in docs]
    prompt_ids = []
    for t in texts:
        messages = prompts.responder_messages("doc_general_qa", [t], "Who founded the town?", style="small")
        prompt_ids.append(tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), add_special_tokens=False)["input_ids"])
    engine = HFEngine(model, tok)
    outs = engine.generate(prompt_ids, args.group_size, SamplingParams(max_new_tokens=args.new_tokens, seed=0))
    batch = []
    for ids, group in zip(prompt_ids, outs):
        rewards = [float(i % 2) for i in range(len(group))]  # fixed, varied rewards
        for c, a in zip(group, group_zscore(rewards, unbiased=False)):
            batch.append(TrainSequence(ids, c.token_ids, c.logprobs, a, "responder"))
    tokens = sum(len(s.response_ids) for s in batch)

    result = {"model": args.model, "sequences": len(batch), "response_tokens": tokens}
    # Ours twice: as it runs (a group's prompt trained once) and with one row per sequence, the
    # layout TRL uses, so the comparison shows what the packing buys and what the rest does.
    for label, share in (("spell", True), ("spell_one_row_per_sequence", False)):
        settings = TrainerSettings(lr=1e-6, pad_token_id=tok.pad_token_id, micro_batch_tokens=8192, share_prefix=share)
        ours = TorchTrainer(model, functools.partial(policy_loss, clip=0.2), settings)
        ours.train_step(batch)  # warm-up
        t = time.monotonic()
        ours.train_step(batch)
        ours_s = time.monotonic() - t
        result.update({f"{label}_seconds": round(ours_s, 3), f"{label}_tokens_per_s": round(tokens / ours_s, 1)})
    try:
        import trl  # noqa: F401
    except ImportError:
        result["trl"] = "not installed: pip would need --no-deps to keep torch 2.13.0+cpu; not measured"
        print(json.dumps(result, indent=1))
        return
    result["trl_version"] = trl.__version__
    result.update(_trl_step(path, batch, tok, args))
    print(json.dumps(result, indent=1))


def _trl_step(path, batch, tok, args):
    """GRPOTrainer's loss on the same sequences: its _compute_loss on prepared inputs, one step."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from spell.models import load_model

    model, _ = load_model(path)
    cfg = GRPOConfig(output_dir="/tmp/trl-bench", per_device_train_batch_size=len(batch), num_generations=args.group_size,
                     learning_rate=1e-6, beta=0.0, epsilon=0.2, loss_type="grpo", report_to=[], use_cpu=True,
                     max_completion_length=args.new_tokens, gradient_checkpointing=False)  # as ours here
    trainer = GRPOTrainer(model=model, reward_funcs=[lambda **k: [0.0] * len(k["prompts"])], args=cfg,
                          train_dataset=Dataset.from_list([{"prompt": "x"}] * len(batch)), processing_class=tok)
    width_p = max(len(s.prompt_ids) for s in batch)
    width_c = max(len(s.response_ids) for s in batch)
    pad = tok.pad_token_id
    p_ids = torch.tensor([[pad] * (width_p - len(s.prompt_ids)) + s.prompt_ids for s in batch])
    p_mask = torch.tensor([[0] * (width_p - len(s.prompt_ids)) + [1] * len(s.prompt_ids) for s in batch])
    c_ids = torch.tensor([s.response_ids + [pad] * (width_c - len(s.response_ids)) for s in batch])
    c_mask = torch.tensor([[1] * len(s.response_ids) + [0] * (width_c - len(s.response_ids)) for s in batch])
    old = torch.tensor([s.old_logprobs + [0.0] * (width_c - len(s.response_ids)) for s in batch])
    inputs = {"prompt_ids": p_ids, "prompt_mask": p_mask, "completion_ids": c_ids, "completion_mask": c_mask,
              "advantages": torch.tensor([s.advantage for s in batch]), "old_per_token_logps": old}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    times = []
    for _ in range(2):
        t = time.monotonic()
        loss = trainer.compute_loss(model, inputs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        times.append(time.monotonic() - t)
    tokens = sum(len(s.response_ids) for s in batch)
    return {"trl_seconds": round(times[-1], 3), "trl_tokens_per_s": round(tokens / times[-1], 1)}


if __name__ == "__main__":
    main()
