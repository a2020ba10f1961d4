"""A supervised warm-up before self-play (`warmup.enabled`; on in cpu-demo, off in paper-7b).

A 135M model asked to play the three roles from scratch gives self-play nothing to work with: its
questions copy the prompt's example, its answers copy the prompt's placeholder, and its verifier
says YES to everything, so no reward separates good play from bad. QwenLong-L1 warms its policy
up with supervised data before RL; here the supervised data is made by rule from the training
corpus itself (no labels, no other model), in the exact prompts and output formats self-play uses:

    a fact sentence of the documents, one answer span in it (a name, date or number), and the
    cloze question 'Which name completes "... ___ ..."?'

becomes, for the same documents,
    - a questioner record (Evidence / Question / Answer lines, and Wrong lines for MC) that the
      question-quality rule accepts (spell/quality.py: the same rule the run scores with);
    - a responder answer line, "The correct answer is <span>" (QA) or "(X)" (MC, the three wrong
      options spans of the same kind, from these documents and from other clusters);
    - two verifier judgments: YES for the reference span, NO for another span of the same kind.

The warm-up trains one pass over these examples, a few optimizer steps, each example weighing the
same whatever its length. It never sees an evaluation set: the examples come from the training
corpus only. The run evaluates before and after it, so its gain and self-play's are reported
apart (bench/learning.py).
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from spell import prompts
from spell.answers import normalize_answer
from spell.config import role_max_tokens
from spell.grounded import clozes, evidence_candidates, mc_options, overlaps
from spell.loss import supervised_loss
from spell.progress import NO_PROGRESS
from spell.spans import candidate_spans, span_kind
from spell.trainers.base import TrainSequence

ROLES = ("questioner", "responder", "verifier")
RECORDS_PER_PROMPT = 4  # questioner records trained per document set


@dataclass(frozen=True)
class RulePair:
    """A cloze question about one sentence of `doc_ids`, and its answer span."""

    cluster: str
    doc_ids: tuple[str, ...]
    evidence: str
    question: str
    answer: str
    kind: str  # "year", "number" or "name"


@dataclass(frozen=True)
class Example:
    role: str
    task: str
    messages: list[dict[str, str]]
    completion: str


def rule_pairs(corpus: Any, docs_per_question: int, rng: random.Random) -> list[RulePair]:
    """Every usable (sentence, span) of every cluster, the documents taken `docs_per_question` at
    a time as the questioner sees them; only pairs the question-quality rule accepts."""
    pairs: list[RulePair] = []
    for cluster in corpus.clusters:
        ids = list(cluster.doc_ids)
        for start in range(0, len(ids), max(1, docs_per_question)):
            doc_ids = tuple(ids[start:start + docs_per_question])
            docs = corpus.docs(doc_ids)
            for evidence in evidence_candidates(docs):
                offered = clozes(evidence, docs)  # the clozes the questioner's grammar offers
                if offered:
                    question, span = rng.choice(offered)
                    pairs.append(RulePair(cluster.id, doc_ids, evidence.sentence, question, span, span_kind(span)))
    return pairs


def _other_spans(answer: str, kind: str, spans: Sequence[str]) -> list[str]:
    """The distinct spans (as the quality rule compares options: normalize_answer) of `kind` that
    do not overlap `answer` ("May 2041" is no wrong option beside "2041"), in order: the first three
    are a choice the MC questioner grammar allows (grounded.questioner_grammar)."""
    seen: set[str] = set()
    out = []
    for span in spans:
        low = normalize_answer(span)
        if span_kind(span) == kind and low not in seen and not overlaps(span, answer):
            seen.add(low)
            out.append(span)
    return out


def _wrong_spans(pair: RulePair, local: Sequence[str], pool: dict[str, list[str]], rng: random.Random, n: int = 3) -> list[str] | None:
    """`n` distinct spans of the pair's kind that are not its answer: from its documents first,
    then from the rest of the corpus."""
    same = _other_spans(pair.answer, pair.kind, local)
    rng.shuffle(same)
    chosen = same[: rng.randint(1, n)] if same else []
    elsewhere = _other_spans(pair.answer, pair.kind, [s for s in pool.get(pair.kind, [])
                                                      if s.lower() not in {c.lower() for c in chosen}])
    rng.shuffle(elsewhere)
    chosen += elsewhere[: n - len(chosen)]
    return chosen if len(chosen) == n else None


def build_examples(corpus: Any, cfg: Any, seed: int) -> list[Example]:
    """The warm-up examples of a corpus: up to `warmup.examples_per_role` for the questioner and the
    responder and `warmup.verifier_examples` for the verifier, the same list on every rank (a pure
    function of the corpus, the config and the seed)."""
    rng = random.Random(seed)
    pairs = rule_pairs(corpus, cfg.tasks.docs_per_question, rng)
    rng.shuffle(pairs)
    pool: dict[str, list[str]] = {}
    for cluster in corpus.clusters:
        for span in candidate_spans(corpus.docs(cluster.doc_ids), limit=64):
            pool.setdefault(span_kind(span), []).append(span)
    n = cfg.warmup.examples_per_role
    examples = _responder_and_verifier(corpus, cfg, pairs, pool, n, cfg.warmup.verifier_examples, rng)
    if cfg.structured.questioner and cfg.structured.grounded:
        examples += _questioner(corpus, cfg, pairs, n)
    rng.shuffle(examples)
    return examples


def _responder_and_verifier(corpus, cfg, pairs, pool, n, n_verifier, rng) -> list[Example]:
    """`n` responder examples, half general QA, half MC (three wrong options of the answer's kind);
    `n_verifier` verifier examples, as many YES as NO."""
    style = cfg.prompts.style
    one_line = cfg.structured.responder and cfg.structured.grounded
    decision_only = cfg.structured.verifier and cfg.structured.grounded
    responder: list[Example] = []
    verifier: list[Example] = []
    for i, pair in enumerate(pairs):
        if len(responder) >= n and len(verifier) >= n_verifier:
            break
        docs = corpus.docs(pair.doc_ids)
        wrong = _wrong_spans(pair, candidate_spans(docs, limit=64), pool, rng)
        if len(responder) < n:
            if i % 2 and wrong:
                options, letter = mc_options(pair.question, pair.answer, wrong)
                responder.append(Example("responder", "doc_mc", prompts.responder_messages(
                    "doc_mc", docs, pair.question, options, style=style, grounded=one_line),
                    f"The correct answer is ({letter})"))
            else:
                responder.append(Example("responder", "doc_general_qa", prompts.responder_messages(
                    "doc_general_qa", docs, pair.question, None, style=style, grounded=one_line),
                    f"The correct answer is {pair.answer}"))
        if len(verifier) < n_verifier and wrong:
            for candidate, verdict in ((pair.answer, "YES"), (rng.choice(wrong), "NO")):
                verifier.append(Example("verifier", "doc_general_qa", prompts.verifier_messages(
                    "doc_general_qa", pair.question, candidate, pair.answer, None, structured=cfg.structured.verifier,
                    style=style, grounded=decision_only), verdict))
    return responder[:n] + verifier[:n_verifier]


def _questioner(corpus, cfg, pairs, n) -> list[Example]:
    """Grounded questioner records, RECORDS_PER_PROMPT about each document set (its prompt is the
    same for all of them: the trainer reads it once); MC on every other set when the documents
    offer three wrong spans of the answer's kind."""
    by_docs: dict[tuple[str, ...], list[RulePair]] = {}
    for pair in pairs:
        by_docs.setdefault(pair.doc_ids, []).append(pair)
    out: list[Example] = []
    for number, (doc_ids, group) in enumerate(by_docs.items()):
        docs = corpus.docs(doc_ids)
        local = candidate_spans(docs, limit=64)
        for pair in group[:RECORDS_PER_PROMPT]:
            if len(out) >= n:
                return out
            record = f"Evidence: {pair.evidence}\nQuestion: {pair.question}\nAnswer: {pair.answer}"
            wrong = _other_spans(pair.answer, pair.kind, local)[:3]
            task = "doc_mc" if number % 2 and len(wrong) == 3 else "doc_general_qa"
            if task == "doc_mc":
                record += "".join(f"\nWrong: {w}" for w in wrong)
            out.append(Example("questioner", task, prompts.questioner_messages(
                task, docs, [], structured=True, style=cfg.prompts.style, grounded=True,
                cloze=cfg.structured.cloze_questions), record))
    return out


def training_sequences(
    examples: Sequence[Example], tokenizer: Any, max_prompt_tokens: int, max_response_tokens: Mapping[str, int],
) -> list[TrainSequence]:
    """One sequence per example whose prompt and response fit (a role's response, with its
    end-of-turn token, within what its rollouts may generate: it must not teach a record the
    token limit would cut); the advantage 1 makes the policy loss at ratio 1 the supervised
    (cross-entropy) gradient."""
    stop = prompts.end_of_turn_id(tokenizer)
    out = []
    for e in examples:
        prompt_ids = prompts.encode_messages(tokenizer, e.messages)
        response = list(tokenizer(e.completion, add_special_tokens=False)["input_ids"]) + ([stop] if stop is not None else [])
        if len(prompt_ids) > max_prompt_tokens or len(response) > max_response_tokens[e.role]:
            continue
        out.append(TrainSequence(prompt_ids, response, [0.0] * len(response), 1.0, e.role))
    return out


def run_warmup(trainer: Any, tokenizer: Any, corpus: Any, cfg: Any, progress: Any = None) -> dict[str, Any]:
    """Train the warm-up (one pass, `warmup.batch_sequences` per optimizer step, at `warmup.lr`,
    then back to optim.lr); returns what it did, for the run's log."""
    started = time.monotonic()
    examples = build_examples(corpus, cfg, cfg.run.seed)
    sequences = training_sequences(examples, tokenizer, cfg.sampling.max_prompt_tokens,
                                   {role: role_max_tokens(cfg, role) for role in ROLES})
    counts = {r: sum(1 for s in sequences if s.role == r) for r in ROLES}
    losses: list[float] = []
    if sequences:
        trainer.set_learning_rate(cfg.warmup.lr)
        batches = _batches(sequences, cfg.warmup.batch_sequences, random.Random(cfg.run.seed))
        policy_loss, trainer.loss_fn = trainer.loss_fn, functools.partial(
            supervised_loss, aggregation=trainer.settings.loss_aggregation)
        try:
            with (progress or NO_PROGRESS).phase("warmup", len(sequences) * cfg.warmup.epochs) as reported:
                for _epoch in range(cfg.warmup.epochs):
                    for batch in batches:
                        _weigh_examples_equally(batch)
                        losses.append(trainer.train_step(batch)["loss"])
                        reported.advance(len(batch))
        finally:
            trainer.loss_fn = policy_loss
            trainer.set_learning_rate(cfg.optim.lr)
    return {
        "examples": counts, "optimizer_steps": len(losses), "seconds": round(time.monotonic() - started, 1),
        "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
    }


def _batches(sequences: list[TrainSequence], size: int, rng: random.Random) -> list[list[TrainSequence]]:
    """Batches of `size`, the sequences of one prompt kept together (the trainer then reads that
    prompt once for all of them: the questioner's records about one document pair), in an order
    drawn from `rng` so the roles mix over the pass."""
    by_prompt: dict[tuple[int, ...], list[TrainSequence]] = {}
    for seq in sequences:
        by_prompt.setdefault(tuple(seq.prompt_ids), []).append(seq)
    ordered = [seq for group in by_prompt.values() for seq in group]
    batches = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    rng.shuffle(batches)
    return batches


def _weigh_examples_equally(batch: list[TrainSequence]) -> None:
    """The trainer takes one token-mean over the batch; an advantage of (batch tokens / (n x own
    tokens)) turns it into the mean over examples (a YES weighs as much as a whole record)."""
    total = sum(len(s.response_ids) for s in batch)
    for s in batch:
        s.advantage = total / (len(batch) * len(s.response_ids))
