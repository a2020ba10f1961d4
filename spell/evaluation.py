"""Evaluation on public long-context sets (SPELL.md, "Data the paper used" / "Eval scoring").

For each EvalItem: the context is middle-truncated to a token budget, the model answers with the
responder prompt k times (temperature 0.7, top_p 0.95 in the paper), and each answer is scored
with the training rules: MC by letter, QA by cover-EM (best over the accepted answers), DocMath
by the numeric rule. Per set we report mean@k (the mean score of all k x items answers) and
pass@k (the share of items with at least one correct answer among k).

    python -m spell eval --model DIR --set longbench_v2.json --set hotpotqa.jsonl --k 8 --max-input-tokens 16384
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from spell import prompts
from spell.progress import NO_PROGRESS, Progress
from spell.rewards import rule_score


class BadInput(ValueError):
    """A user error (bad file, bad value): the CLI prints its message on one line and exits 2."""


@dataclass
class EvalOptions:
    k: int = 8
    max_input_tokens: int | None = None  # None: the model's positions less max_new_tokens (the CLI resolves it)
    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    limit: int | None = None  # only the first N items of each set
    seed: int = 0
    prompt_style: str = "release"  # the responder prompt's wording (spell/prompt_styles)
    # As the training responder is prompted and decoded, so that an evaluation measures the policy
    # as it is trained: the answer-line grammar (structured.responder) and the small style's
    # one-line prompt (with structured.grounded).
    answer_grammar: bool = False
    one_line_answer: bool = False


def item_options(item: Any) -> dict[str, str] | None:
    if item.choices is None:
        return None
    return dict(zip("ABCD", item.choices))


def score_response(item: Any, response: str) -> float:
    """The training rules on an eval item: the best score over its accepted answers."""
    if not item.answers:
        return 0.0
    return max(rule_score(item.task, response, answer) for answer in item.answers)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021); n == k: any correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def build_prompt(
    item: Any, tokenizer: Any, max_input_tokens: int, style: str = prompts.DEFAULT_STYLE, one_line_answer: bool = False
) -> list[int]:
    """The responder prompt (in `style`) over the item's context, with the context middle-truncated
    so the whole prompt fits `max_input_tokens` (the paper truncates the input at 16K / 100K)."""
    from spell.data.evalsets import middle_truncate

    def encode(context: str) -> list[int]:
        messages = prompts.responder_messages(item.task, [context], item.question, item_options(item), style=style,
                                              grounded=one_line_answer)
        return prompts.encode_messages(tokenizer, messages)

    overhead = len(encode(""))
    budget = max_input_tokens - overhead
    if budget <= 0:
        raise BadInput(f"--max-input-tokens {max_input_tokens} leaves no room for the context (the prompt alone takes {overhead})")
    context_ids = tokenizer(item.context, add_special_tokens=False)["input_ids"]
    if len(context_ids) > budget:
        context = tokenizer.decode(middle_truncate(context_ids, budget), skip_special_tokens=True)
        ids = encode(context)
        # Decoding and re-encoding can shift a few tokens at the cut: trim until it fits.
        while len(ids) > max_input_tokens and budget > 0:
            budget -= max(1, len(ids) - max_input_tokens)
            ids = encode(tokenizer.decode(middle_truncate(context_ids, budget), skip_special_tokens=True))
        return ids
    return encode(item.context)


def evaluate(
    engine: Any,
    tokenizer: Any,
    sets: dict[str, Sequence[Any]],
    options: EvalOptions,
    *,
    progress: Progress = NO_PROGRESS,
    step: int | None = None,
) -> dict[str, Any]:
    """Scores per set: {"sets": {name: {"mean@k", "pass@k", "items", "k", "item_means", ...}},
    "mean": ...}. `mean` is the unweighted average of the sets' mean@k (the paper averages
    benchmarks); `item_means` (each item's mean score over its k answers, in file order) lets two
    evaluations of the same set be compared item by item (spell/stats.py paired_bootstrap)."""
    from spell.engines.base import SamplingParams
    from spell.grounded import responder_grammar
    from spell.rollout import derive_seed

    if options.max_input_tokens is None:
        raise ValueError("EvalOptions.max_input_tokens: set it (evaluate_cli derives it from the model)")
    started = time.monotonic()
    results: dict[str, Any] = {}
    chosen = {name: list(items)[: options.limit] if options.limit else list(items) for name, items in sets.items()}
    reported = progress.phase("eval", sum(len(items) for items in chosen.values()), "items", step=step)
    for name, items in chosen.items():
        if not items:
            continue
        prompts_ = [build_prompt(item, tokenizer, options.max_input_tokens, options.prompt_style, options.one_line_answer)
                    for item in items]
        scores: list[list[float]] = []
        # One item at a time: long contexts, and k samples share its prefix.
        for i, (item, ids) in enumerate(zip(items, prompts_)):
            sampling = SamplingParams(
                temperature=options.temperature, top_p=options.top_p, max_new_tokens=options.max_new_tokens,
                seed=derive_seed(options.seed, "eval", name, i),
                grammar=responder_grammar(item.task) if options.answer_grammar else None,
            )
            (completions,) = engine.generate([ids], options.k, sampling)
            scores.append([score_response(item, c.text) for c in completions])
            reported.advance(1, sum(len(c.token_ids) for c in completions))
        k = options.k
        flat = [s for row in scores for s in row]
        results[name] = {
            "items": len(items),
            "k": k,
            "mean@k": sum(flat) / len(flat),
            "pass@k": sum(pass_at_k(k, sum(1 for s in row if s >= 1.0), k) for row in scores) / len(scores),
            "truncated_inputs": sum(1 for ids in prompts_ if len(ids) >= options.max_input_tokens),
            "item_means": [round(sum(row) / len(row), 4) for row in scores],
        }
    reported.finish()
    means = [r["mean@k"] for r in results.values()]
    return {
        "sets": results,
        "mean": sum(means) / len(means) if means else None,
        "seconds": round(time.monotonic() - started, 2),
    }


def read_sets(paths: Sequence[Path | str]) -> dict[str, list[Any]]:
    """Read eval-set files; a set is named by its file stem. Unreadable files -> BadInput."""
    from spell.data.evalsets import EvalSetFormatError, read_eval_set

    sets: dict[str, list[Any]] = {}
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"evaluation set {p} does not exist")
        try:
            sets[p.stem] = read_eval_set(p)
        except (EvalSetFormatError, OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"evaluation set {p}: {exc}") from None
    return sets


def evaluate_cli(
    *,
    model: str | None,
    checkpoint: str | None,
    set_paths: Sequence[Path],
    options: EvalOptions,
    progress: bool = True,
    log_every: float = 10.0,
) -> dict[str, Any]:
    """`python -m spell eval`: load the model (or a checkpoint's model), read the sets, evaluate."""
    from spell.engines.hf import HFEngine
    from spell.models import load_model, model_max_positions

    if options.k < 1:
        raise BadInput("--k must be at least 1")
    if options.max_new_tokens < 1:
        raise BadInput("--max-new-tokens must be at least 1")
    if options.max_input_tokens is not None and options.max_input_tokens < 1:
        raise BadInput("--max-input-tokens must be at least 1")
    if options.one_line_answer and options.prompt_style != "small":
        raise BadInput("--answer-line is the small prompt style's answer: add --prompt-style small")
    folder = Path(model) if model else _checkpoint_model_dir(Path(checkpoint))
    positions = model_max_positions(folder)
    if options.max_input_tokens is None:  # what the model can read besides the answer
        if options.max_new_tokens >= positions:
            raise BadInput(f"--max-new-tokens {options.max_new_tokens} leaves no room for an input in the model's {positions} positions")
        options = replace(options, max_input_tokens=positions - options.max_new_tokens)
    if options.max_input_tokens + options.max_new_tokens > positions:
        raise BadInput(
            f"--max-input-tokens {options.max_input_tokens} + --max-new-tokens {options.max_new_tokens} "
            f"exceeds the model's {positions} positions"
        )
    sets = read_sets(set_paths)  # before loading the model: bad files fail fast
    net, tokenizer = load_model(folder)
    engine = HFEngine(net, tokenizer)
    results = evaluate(engine, tokenizer, sets, options, progress=Progress(console="auto" if progress else "off", log_every=log_every, bar_position=0))
    results["model"] = str(folder)
    return results


def _checkpoint_model_dir(path: Path) -> Path:
    """A checkpoint folder (holding model/), or a run's checkpoints/ folder (its `latest`)."""
    if (path / "latest").is_file():
        name = (path / "latest").read_text().strip()
        path = path / name
    if (path / "model").is_dir():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    raise BadInput(f"{path} is not a checkpoint (no model/ folder)")

