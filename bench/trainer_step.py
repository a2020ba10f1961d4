"""Time and peak memory of one trainer step on SmolLM2-135M-Instruct (CPU, fp32).

A group of G=4 sequences of ~2K tokens (1,792 prompt + 256 response), the clipped
policy-gradient loss, one AdamW step. Peak RSS is the process's high-water mark (it includes
the model, the optimizer state and the loaded libraries).

    .venv/bin/python bench/trainer_step.py [--backend torch|deepspeed] [--group 4] [--context 2048]
    python bench/trainer_step.py --device cuda --model-dir DIR [--backend deepspeed --zero-stage 3]
        (bf16 on the GPU; peak memory is then torch.cuda's peak allocation; bench/gpu_check.sh)
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import torch

from spell.models import SMOLLM2, load_model, prepare_model
from spell.trainers.base import TrainerSettings, TrainSequence


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kB


def token_mean_pg_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, entropy=None):
    """Clipped policy gradient, token-mean (the shape spell.loss computes; kept here so the bench
    does not depend on that module's keyword arguments)."""
    mask = mask.float()
    ratio = torch.exp((logprobs - old_logprobs).clamp(-20, 20))
    per_token = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(0.8, 1.2))
    return (per_token * mask).sum() / mask.sum(), {}


def make_batch(group: int, context: int, response: int, vocab: int) -> list[TrainSequence]:
    rng = random.Random(0)
    prompt = [1] + [rng.randrange(100, vocab) for _ in range(context - response - 1)]
    advantages = [1.2, -0.4, 0.5, -1.3]
    return [
        TrainSequence(
            prompt_ids=prompt,
            response_ids=[rng.randrange(100, vocab) for _ in range(response)],
            old_logprobs=[-10.8] * response,
            advantage=advantages[i % len(advantages)],
            role="responder",
        )
        for i in range(group)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "deepspeed"), default="torch")
    parser.add_argument("--zero-stage", type=int, default=2)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--response", type=int, default=256)
    parser.add_argument("--micro-batch-tokens", type=int, default=4096)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--no-share-prefix", action="store_true", help="one row per sequence (the group's prompt G times)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model-dir", help="a model folder (default: SmolLM2-135M-Instruct, prepared)")
    args = parser.parse_args()

    on_gpu = args.device == "cuda"
    model, tokenizer = load_model(args.model_dir or prepare_model(SMOLLM2), dtype=torch.bfloat16 if on_gpu else None,
                                  device=args.device)
    loaded_gb = peak_rss_gb()
    settings = TrainerSettings(
        lr=2e-6,
        micro_batch_tokens=args.micro_batch_tokens,
        logprob_chunk_tokens=512,
        gradient_checkpointing=args.gradient_checkpointing,
        pad_token_id=tokenizer.pad_token_id,
        zero_stage=args.zero_stage,
        share_prefix=not args.no_share_prefix,
    )
    if args.backend == "torch":
        from spell.trainers.torch_trainer import TorchTrainer

        trainer = TorchTrainer(model, token_mean_pg_loss, settings, device=args.device)
    else:
        from spell.trainers.deepspeed_trainer import DeepSpeedTrainer

        trainer = DeepSpeedTrainer(model, token_mean_pg_loss, settings, device=args.device)
    batch = make_batch(args.group, args.context, args.response, len(tokenizer))
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        metrics = trainer.train_step(batch)
        if on_gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        print(f"  step: {times[-1]:.1f} s, loss {metrics['loss']:.4f}, grad_norm {metrics['grad_norm']:.3f}, "
              f"micro-batches {int(metrics['micro_batches'])}", flush=True)

    label = args.backend + (f" ZeRO-{args.zero_stage}" if args.backend == "deepspeed" else "")
    label += ", prompt once" if not args.no_share_prefix else ", prompt per sequence"
    where = f"{torch.cuda.get_device_name(0)}, bf16" if on_gpu else f"CPU ({torch.get_num_threads()} threads), fp32"
    print(f"\n{args.model_dir or 'SmolLM2-135M-Instruct'}, {where}, G={args.group} x "
          f"{args.context} tokens ({args.response} response), micro-batch budget {args.micro_batch_tokens} tokens\n")
    if on_gpu:
        peak = torch.cuda.max_memory_allocated() / 1024**3
        print("| trainer | gradient checkpointing | first step (s) | later step (s) | peak GPU allocated (GiB) | trained tok/s |")
        print("|---|:---:|---:|---:|---:|---:|")
        print(f"| {label} | {'on' if args.gradient_checkpointing else 'off'} | {times[0]:.3f} | {min(times[1:] or times):.3f} "
              f"| {peak:.2f} | {args.group * args.context / min(times[1:] or times):.0f} |")
        return
    print("| trainer | gradient checkpointing | first step (s) | later step (s) | peak RSS (GB) | RSS after load (GB) |")
    print("|---|:---:|---:|---:|---:|---:|")
    print(f"| {label} | {'on' if args.gradient_checkpointing else 'off'} | {times[0]:.1f} | {min(times[1:] or times):.1f} "
          f"| {peak_rss_gb():.2f} | {loaded_gb:.2f} |")


if __name__ == "__main__":
    main()
