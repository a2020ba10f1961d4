"""How much of what the trainer computes is padding, on the cpu-demo warm-up's own batches.

    .venv/bin/python bench/packing.py [--corpus samples/corpus/sample.jsonl] [--preset cpu-demo]

The warm-up mixes roles in one batch: a questioner or responder example carries its documents
(1-2K tokens), a verifier example is a short prompt and one word (about 100). The trainer packs a
batch into micro-batches padded to their longest row (spell/trainers/base.py, `pack_rows`), so a
short row packed beside a long one costs as much as the long one. This script builds the warm-up's
examples and batches exactly as `run_warmup` does (SmolLM2's tokenizer, the preset's limits and
micro-batch budget) and counts, over the whole pass, the positions the model runs (rows x width of
every micro-batch) against the tokens really there. A forward and backward pass costs about in
proportion to the positions, so their ratio is the share of the warm-up's compute spent on padding.
No model is run: it takes seconds.

`--train N` also times the first N warm-up batches through the product's trainer (SmolLM2, the
preset's trainer settings, the supervised loss), once packed as before c539345 (no fill rule:
`MIN_ROW_FILL` set to 0 for the run) and once as now, each from the same fresh weights.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spell.config import preset, role_max_tokens  # noqa: E402
from spell.data.ingest import read_corpus_jsonl  # noqa: E402
from spell.rollout import Corpus  # noqa: E402
from spell.trainers.base import TrainerSettings, micro_batches  # noqa: E402
from spell.warmup import ROLES, _batches, build_examples, training_sequences  # noqa: E402


def _warmup_batches(corpus_path: Path, cfg, tokenizer) -> list:
    def count(texts):
        return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]

    corpus = Corpus.from_records(read_corpus_jsonl(corpus_path), count)
    sequences = training_sequences(build_examples(corpus, cfg, cfg.run.seed), tokenizer, cfg.sampling.max_prompt_tokens,
                                   {role: role_max_tokens(cfg, role) for role in ROLES})
    return _batches(sequences, cfg.warmup.batch_sequences, random.Random(cfg.run.seed))


def time_training(corpus_path: Path, preset_name: str, n_batches: int) -> dict:
    """Seconds for the first `n_batches` warm-up batches, packed without and with the fill rule."""
    import functools

    import torch

    from spell.loss import supervised_loss
    from spell.models import SMOLLM2, load_model, prepare_model
    from spell.trainers import base
    from spell.trainers.torch_trainer import TorchTrainer

    cfg = preset(preset_name)
    out = {}
    for label, fill in (("before", 0.0), ("now", base.MIN_ROW_FILL)):
        torch.manual_seed(0)
        model, tokenizer = load_model(prepare_model(SMOLLM2))
        settings = TrainerSettings.from_run_config(cfg, pad_token_id=tokenizer.pad_token_id or 0)
        trainer = TorchTrainer(model, functools.partial(supervised_loss, aggregation=settings.loss_aggregation), settings)
        trainer.set_learning_rate(cfg.warmup.lr)
        batches = _warmup_batches(corpus_path, cfg, tokenizer)[:n_batches]
        kept, base.MIN_ROW_FILL = base.MIN_ROW_FILL, fill
        try:
            started = time.monotonic()
            for batch in batches:
                trainer.train_step(batch)
            out[label] = round(time.monotonic() - started, 1)
        finally:
            base.MIN_ROW_FILL = kept
    out["sequences"] = sum(len(b) for b in batches)
    return out


def measure(corpus_path: Path, preset_name: str) -> dict:
    from transformers import AutoTokenizer

    from spell.models import SMOLLM2, prepare_model

    tokenizer = AutoTokenizer.from_pretrained(prepare_model(SMOLLM2))
    cfg = preset(preset_name)

    started = time.monotonic()
    batches = _warmup_batches(corpus_path, cfg, tokenizer)
    settings = TrainerSettings.from_run_config(cfg, pad_token_id=tokenizer.pad_token_id or 0)
    positions = real = micros = 0
    for batch in batches:
        for micro in micro_batches(batch, settings):
            micros += 1
            positions += micro.input_ids.numel()
            real += int(micro.attention_mask.sum())
    return {"sequences": sum(len(b) for b in batches), "micro_batches": micros, "positions": positions, "real_tokens": real,
            "padding_share": 1 - real / positions, "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description="padding in the warm-up's micro-batches")
    p.add_argument("--corpus", type=Path, default=ROOT / "samples" / "corpus" / "sample.jsonl")
    p.add_argument("--preset", default="cpu-demo")
    p.add_argument("--train", type=int, default=0, help="also time this many warm-up batches, packed before and now")
    args = p.parse_args()
    r = measure(args.corpus, args.preset)
    print(f"{r['sequences']} sequences in {r['micro_batches']} micro-batches: {r['positions']:,} positions run for "
          f"{r['real_tokens']:,} real tokens (padding {r['padding_share']:.0%}; {r['seconds']} s)")
    if args.train:
        t = time_training(args.corpus, args.preset, args.train)
        print(f"first {args.train} batches ({t['sequences']} sequences) trained: {t['before']} s packed as before, "
              f"{t['now']} s now")


if __name__ == "__main__":
    main()
