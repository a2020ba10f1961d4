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


def measure(corpus_path: Path, preset_name: str) -> dict:
    from transformers import AutoTokenizer

    from spell.models import SMOLLM2, prepare_model

    tokenizer = AutoTokenizer.from_pretrained(prepare_model(SMOLLM2))
    cfg = preset(preset_name)

    def count(texts):
        return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]

    corpus = Corpus.from_records(read_corpus_jsonl(corpus_path), count)
    started = time.monotonic()
    sequences = training_sequences(build_examples(corpus, cfg, cfg.run.seed), tokenizer, cfg.sampling.max_prompt_tokens,
                                   {role: role_max_tokens(cfg, role) for role in ROLES})
    settings = TrainerSettings.from_run_config(cfg, pad_token_id=tokenizer.pad_token_id or 0)
    positions = real = micros = 0
    for batch in _batches(sequences, cfg.warmup.batch_sequences, random.Random(cfg.run.seed)):
        for micro in micro_batches(batch, settings):
            micros += 1
            positions += micro.input_ids.numel()
            real += int(micro.attention_mask.sum())
    return {"sequences": len(sequences), "micro_batches": micros, "positions": positions, "real_tokens": real,
            "padding_share": 1 - real / positions, "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description="padding in the warm-up's micro-batches")
    p.add_argument("--corpus", type=Path, default=ROOT / "samples" / "corpus" / "sample.jsonl")
    p.add_argument("--preset", default="cpu-demo")
    args = p.parse_args()
    r = measure(args.corpus, args.preset)
    print(f"{r['sequences']} sequences in {r['micro_batches']} micro-batches: {r['positions']:,} positions run for "
          f"{r['real_tokens']:,} real tokens (padding {r['padding_share']:.0%}; {r['seconds']} s)")


if __name__ == "__main__":
    main()
