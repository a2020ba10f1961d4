"""Can the model verify? The small-model verifier's decision on held-out pairs whose answer is known.

    .venv/bin/python bench/verifier_probe.py                                   # the bundled SmolLM2
    .venv/bin/python bench/verifier_probe.py --model var/bench/learning/checkpoints/step-000015/model

Each short-answer item of a held-out set (samples/eval/, towns the training corpus never mentions)
gives two verifier prompts, in the preset's own wording (the small style's YES / NO prompt, as
rollouts and the warm-up build it): the reference answer as the candidate (the right decision is
YES), and another item's answer of the same kind (a name for a name, a year for a year: NO). The
grammar allows only YES or NO, so the decision is the first token: the script reads P(YES) against
P(NO) there and reports, per case, its mean and how often YES is the likelier word (greedy), and
the rates that matter to the preset's goal (true-positive and true-negative, each >= 0.7 wanted).
A verifier that says one word whatever it is shown has one of the two rates near 0.

`--train N` first trains the verifier alone on N of the warm-up's own verifier examples (spell/warmup.py:
cloze questions of the sample corpus, half YES with the reference as the candidate, half NO with
another span of its kind; `warmup.lr`, `warmup.batch_sequences`, one pass, each example weighing the
same), to see how many a 135M model needs before it tells a match from a mismatch. It trains with a
plain torch AdamW (the preset's weight decay and betas, no gradient clip), not the product's
trainer: a probe of what the examples teach, not a copy of the warm-up.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spell import prompts  # noqa: E402
from spell.spans import span_kind  # noqa: E402

QA_SET = ROOT / "samples" / "eval" / "heldout_towns_qa.jsonl"


def pairs(path: Path, seed: int = 0) -> list[tuple[str, str, str, bool]]:
    """(question, reference, candidate, same) for each item: itself, and a different answer of its kind."""
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rng = random.Random(seed)
    by_kind: dict[str, list[str]] = {}
    for item in items:
        by_kind.setdefault(span_kind(item["answers"][0]), []).append(item["answers"][0])
    out = []
    for item in items:
        reference = item["answers"][0]
        others = [a for a in by_kind[span_kind(reference)] if a.lower() not in {x.lower() for x in item["answers"]}]
        out.append((item["input"], reference, reference, True))
        if others:
            out.append((item["input"], reference, rng.choice(others), False))
    return out


def first_token_ids(tokenizer, word: str) -> int:
    return tokenizer(word, add_special_tokens=False)["input_ids"][0]


def warm_verifier(model, tokenizer, examples: int, corpus_path: Path, seed: int = 0) -> dict:
    """Train the verifier alone on `examples` warm-up examples; what it did."""
    import torch

    from spell.config import preset, with_overrides
    from spell.data.ingest import read_corpus_jsonl
    from spell.rollout import Corpus
    from spell.warmup import build_examples

    cfg = with_overrides(preset("cpu-demo"), {"warmup.verifier_examples": examples})
    records = read_corpus_jsonl(corpus_path)
    corpus = Corpus.from_records(records, lambda texts: [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts])
    chosen = [e for e in build_examples(corpus, cfg, seed) if e.role == "verifier"]
    stop = prompts.end_of_turn_id(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.warmup.lr)
    started, losses = time.monotonic(), []
    model.train()
    size = cfg.warmup.batch_sequences
    for i in range(0, len(chosen), size):
        optimizer.zero_grad()
        batch = chosen[i:i + size]
        total = 0.0
        for e in batch:
            prompt = prompts.encode_messages(tokenizer, e.messages)
            response = tokenizer(e.completion, add_special_tokens=False)["input_ids"] + ([stop] if stop is not None else [])
            ids = torch.tensor([prompt + response])
            logprobs = torch.log_softmax(model(ids).logits[0, len(prompt) - 1:-1], dim=-1)
            nll = -logprobs[torch.arange(len(response)), torch.tensor(response)].mean() / len(batch)
            nll.backward()
            total += float(nll.detach())
        optimizer.step()
        losses.append(total)
    model.eval()
    verdicts = [e.completion for e in chosen]
    return {"examples": len(chosen), "yes": verdicts.count("YES"), "optimizer_steps": len(losses),
            "loss_first": losses[0], "loss_last": losses[-1], "seconds": round(time.monotonic() - started, 1)}


def probe(model_dir: str, path: Path, train: int = 0, corpus: Path | None = None) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    trained = warm_verifier(model, tokenizer, train, corpus) if train else None
    yes, no = first_token_ids(tokenizer, "YES"), first_token_ids(tokenizer, "NO")
    rows = []
    started = time.monotonic()
    with torch.no_grad():
        for question, reference, candidate, same in pairs(path):
            messages = prompts.verifier_messages("doc_general_qa", question, candidate, reference, None,
                                                 structured=True, style="small", grounded=True)
            ids = torch.tensor([prompts.encode_messages(tokenizer, messages)])
            logits = model(ids).logits[0, -1]
            p_yes = torch.softmax(logits[[yes, no]], dim=0)[0].item()
            rows.append((same, p_yes))
    seconds = time.monotonic() - started

    def summary(same: bool) -> dict:
        ps = [p for s, p in rows if s == same]
        return {"pairs": len(ps), "mean_p_yes": sum(ps) / len(ps), "greedy_yes": sum(p > 0.5 for p in ps) / len(ps)}

    positives, negatives = summary(True), summary(False)
    return {
        "model": model_dir, "set": str(path), "seconds": round(seconds, 1), "trained": trained,
        "same_answer": positives, "other_answer": negatives,
        "tpr_greedy": positives["greedy_yes"], "tnr_greedy": 1 - negatives["greedy_yes"],
        # What a vote sampled at temperature 1 (on the two words) gets right on average.
        "tpr_sampled": positives["mean_p_yes"], "tnr_sampled": 1 - negatives["mean_p_yes"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description="the small verifier's YES / NO on held-out answer pairs")
    p.add_argument("--model", default=None, help="model folder (default: the bundled SmolLM2)")
    p.add_argument("--set", type=Path, default=QA_SET, help="a short-answer set in the product's JSONL format")
    p.add_argument("--train", type=int, default=0, help="first train the verifier alone on this many warm-up examples")
    p.add_argument("--corpus", type=Path, default=ROOT / "samples" / "corpus" / "sample.jsonl",
                   help="the corpus the warm-up examples come from")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args()
    if args.model is None:
        from spell.models import SMOLLM2, prepare_model

        args.model = str(prepare_model(SMOLLM2))
    result = probe(args.model, args.set, args.train, args.corpus)
    if result["trained"]:
        print("trained:", result["trained"])
    for case in ("same_answer", "other_answer"):
        r = result[case]
        print(f"{case:13s} pairs {r['pairs']:3d}  mean P(YES) {r['mean_p_yes']:.3f}  greedy YES {r['greedy_yes']:.2f}")
    print(f"TPR / TNR: greedy {result['tpr_greedy']:.2f} / {result['tnr_greedy']:.2f}, "
          f"sampled {result['tpr_sampled']:.2f} / {result['tnr_sampled']:.2f}  ({result['seconds']} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
