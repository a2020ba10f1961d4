"""The supervised warm-up's rule-made examples (spell/warmup.py) on hand-checked sentences, and the
supervised loss it trains with."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
import torch

from spell import grounded
from spell.config import preset, with_overrides
from spell.loss import supervised_loss
from spell.quality import question_quality
from spell.rollout import Cluster, Corpus, Document
from spell.warmup import (
    RulePair, _batches, _other_spans, _weigh_examples_equally, _wrong_spans, build_examples, rule_pairs,
)
from spell.trainers.base import TrainSequence
from tests.support import accepts

TEXTS = {
    "a": "In 1823 the engineer Tobias Quill built the first mill on the River Senn. It was paid for by Aldous "
         "Varrow, the town's first mayor. The mill ground 1,250 sacks of grain in its first year.",
    "b": "Harrowmere received its charter in 1838 from the county court. The Varrow Wool Hall sold 4,800 fleeces "
         "that year to merchants from Wexholt.",
    "c": "The Osmir station counted 412 fish in the winter survey of 2035. Its director Anouk Verbeek planned a "
         "second survey of the outer cove in 2039.",
    "d": "Tidewell had revenue of $9.8 million in 2040. Its largest customer, the Port Alder Harbour Board, bought "
         "140 sonar loggers from Mirela Santorin's team.",
}


def corpus() -> Corpus:
    docs = {k: Document(k, t, f"Doc {k}", len(t.split())) for k, t in TEXTS.items()}
    return Corpus(docs, [Cluster("town", ["a", "b"], True), Cluster("survey", ["c", "d"], True)])


def cfg(**overrides):
    return with_overrides(preset("cpu-demo"), {"warmup.examples_per_role": 6, "warmup.verifier_examples": 6, **overrides})


def test_every_rule_pair_passes_the_question_quality_rule_it_is_scored_by():
    c = corpus()
    pairs = rule_pairs(c, 2, random.Random(0))
    assert len(pairs) >= 6
    for p in pairs:
        docs = c.docs(list(p.doc_ids))
        assert question_quality("doc_general_qa", p.question, p.answer, None, docs).ok, p
        assert p.answer in p.evidence and "___" in p.question and p.answer not in p.question


def test_examples_cover_the_three_roles_in_their_own_formats():
    examples = build_examples(corpus(), cfg(**{"warmup.verifier_examples": 4}), seed=0)
    roles = Counter(e.role for e in examples)
    assert roles == {"questioner": 6, "responder": 6, "verifier": 4}  # the verifier has its own count
    verdicts = Counter(e.completion for e in examples if e.role == "verifier")
    assert verdicts == {"YES": 2, "NO": 2}
    for e in examples:
        prompt = e.messages[0]["content"]
        if e.role == "responder" and e.task == "doc_mc":
            assert re.fullmatch(r"The correct answer is \([ABCD]\)", e.completion)
            assert all(f"{letter}" in prompt for letter in ("A", "B", "C", "D"))
        elif e.role == "responder":
            answer = e.completion.removeprefix("The correct answer is ")
            assert answer in prompt and answer != e.completion
        elif e.role == "questioner":
            record = grounded.read_labelled_record(e.completion)
            assert record["evidence"] in " ".join(prompt.split())
            assert record["answer"] in record["evidence"]


def test_wrong_options_are_distinct_and_never_hold_the_answer():
    spans = ["2041", "May 2041", "1838", "1838", "2035", "Tobias Quill", "20410"]
    assert _other_spans("2041", "year", spans) == ["1838", "2035"]  # no "May 2041", no second "1838"

    pair = RulePair("town", ("a",), "It opened in 2041.", "Which year completes \"It opened in ___\"?", "2041", "year")
    pool = {"year": ["1838", "1838", "1838", "2035", "2035", "1999"]}  # a span occurs once per document set
    for seed in range(20):
        wrong = _wrong_spans(pair, ["1838", "2041"], pool, random.Random(seed))
        assert wrong is not None and len(set(wrong)) == 3 and "2041" not in wrong
    assert _wrong_spans(pair, [], {"year": ["1838", "1838", "1838"]}, random.Random(0)) is None  # not three distinct


def test_every_questioner_example_is_a_record_its_grammar_allows(compiler):
    """The warm-up teaches what rollouts may write: each questioner record, MC wrong options
    included, is in the language of the questioner grammar of its prompt's documents."""
    c = corpus()
    examples = [e for seed in range(3) for e in build_examples(c, cfg(**{"warmup.examples_per_role": 20}), seed=seed)
                if e.role == "questioner"]
    assert {"doc_general_qa", "doc_mc"} <= {e.task for e in examples}
    for e in examples:
        prompt = e.messages[0]["content"]
        shown = sorted((prompt.index(d.text), d) for d in c.documents.values() if d.text in prompt)
        grammar = grounded.questioner_grammar(e.task, [d.text for _, d in shown], cloze=True)
        assert accepts(compiler, grammar, e.completion), e.completion


def test_a_verifier_no_is_for_a_span_other_than_the_reference():
    for e in build_examples(corpus(), cfg(), seed=1):
        if e.role != "verifier":
            continue
        prompt = e.messages[0]["content"]
        reference = prompt.split("Reference answer: ")[1].split("\n")[0]
        candidate = prompt.split("Candidate answer: ")[1].split("\n")[0]
        assert (candidate == reference) == (e.completion == "YES")


def test_examples_are_the_same_for_the_same_seed():
    assert build_examples(corpus(), cfg(), seed=3) == build_examples(corpus(), cfg(), seed=3)


def test_without_grounded_records_there_is_no_questioner_example():
    examples = build_examples(corpus(), cfg(**{"structured.grounded": False}), seed=0)
    assert "questioner" not in {e.role for e in examples}


def _seq(prompt, n, role="responder"):
    return TrainSequence(list(prompt), list(range(n)), [0.0] * n, 1.0, role)


def test_batches_keep_one_prompts_records_together():
    seqs = [_seq([1, 2], 3, "questioner") for _ in range(4)] + [_seq([5 + i], 2) for i in range(4)]
    batches = _batches(seqs, 4, random.Random(0))
    assert sorted(len(b) for b in batches) == [4, 4]
    assert any(all(s.prompt_ids == [1, 2] for s in b) for b in batches)


def test_each_example_weighs_the_same_whatever_its_length():
    batch = [_seq([1], 1), _seq([1], 9)]
    _weigh_examples_equally(batch)
    # token-mean over 10 tokens with these advantages = the mean of the two sequences' means
    assert [s.advantage for s in batch] == [pytest.approx(5.0), pytest.approx(10 / 18)]


def test_the_supervised_loss_is_the_masked_negative_log_likelihood():
    logprobs = torch.tensor([[-1.0, -2.0, -4.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    loss, metrics = supervised_loss(logprobs, torch.zeros(1, 3), torch.ones(1, 3), mask)
    assert float(loss) == pytest.approx(1.5) and metrics["nll"] == pytest.approx(1.5)
    loss.backward()
    assert logprobs.grad.tolist() == [[-0.5, -0.5, 0.0]]

