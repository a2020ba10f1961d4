"""Evaluation scoring on hand-made items: MC by letter, QA by cover-EM, DocMath by the number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spell import grounded
from spell.data.evalsets import EvalItem
from spell.engines.base import Completion
from spell.evaluation import BadInput, EvalOptions, build_prompt, evaluate, pass_at_k, read_sets, score_response

ROOT = Path(__file__).resolve().parents[2]

MC = EvalItem("m1", "doc_mc", "Who?", "ctx", ["Ann", "Bob", "Cy", "Di"], ["B"], "lb2")
QA = EvalItem("q1", "doc_general_qa", "Where?", "ctx", None, ["Senn Ford", "the ford"], "hotpotqa")
MATH = EvalItem("d1", "docmath_qa", "How much?", "ctx", None, ["12.5"], "docmath")


def test_scoring_rules():
    assert score_response(MC, "Reasoning. The correct answer is (B)") == 1.0
    assert score_response(MC, "The correct answer is (C)") == 0.0
    # cover-EM against any accepted answer
    assert score_response(QA, "The correct answer is at Senn Ford, in 1794.") == 1.0
    assert score_response(QA, "The correct answer is the Ford.") == 1.0
    assert score_response(QA, "The correct answer is Tollbury") == 0.0
    assert score_response(MATH, "Therefore, the answer is $12.5 million") == 1.0
    assert score_response(MATH, "Therefore, the answer is -12.5") == 0.0  # the sign matters
    assert score_response(MATH, "\\boxed{0.125}") == 1.0  # percent convention (x100)


def test_pass_at_k():
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(4, 1, 1) == 0.25
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)


class CannedEngine:
    """Answers item i with the i-th list of texts."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []
        self.grammars = []

    def generate(self, prompts, n, sampling):
        self.prompts.append(prompts[0])
        self.grammars.append(sampling.grammar)
        texts = self.answers.pop(0)
        assert len(texts) == n
        return [[Completion(t, [1], [0.0], "stop", len(prompts[0])) for t in texts]]


class CharTokenizer:
    """One token per character; chat template = the user message."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return messages[-1]["content"]

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


def test_mean_and_pass_at_k_per_set():
    engine = CannedEngine([
        ["The correct answer is (B)", "The correct answer is (A)"],  # MC: 1 of 2
        ["The correct answer is (C)", "The correct answer is (D)"],  # MC: 0 of 2
        ["The correct answer is Senn Ford", "The correct answer is Senn Ford"],  # QA: 2 of 2
    ])
    mc2 = EvalItem("m2", "doc_mc", "Which?", "ctx", ["w", "x", "y", "z"], ["A"], "lb2")
    out = evaluate(engine, CharTokenizer(), {"lb2": [MC, mc2], "hotpot": [QA]}, EvalOptions(k=2, max_input_tokens=10_000))
    assert out["sets"]["lb2"]["mean@k"] == 0.25 and out["sets"]["lb2"]["pass@k"] == 0.5
    assert out["sets"]["hotpot"]["mean@k"] == 1.0 and out["sets"]["hotpot"]["pass@k"] == 1.0
    assert out["mean"] == pytest.approx((0.25 + 1.0) / 2)
    assert out["sets"]["lb2"]["items"] == 2 and out["sets"]["lb2"]["k"] == 2
    # each item's mean over its k answers, in file order (for paired comparisons between steps)
    assert out["sets"]["lb2"]["item_means"] == [0.5, 0.0] and out["sets"]["hotpot"]["item_means"] == [1.0]
    assert engine.grammars == [None, None, None]


def test_an_evaluation_prompts_and_decodes_as_the_one_line_responder_when_asked():
    engine = CannedEngine([["The correct answer is (B)", "The correct answer is (B)"]])
    options = EvalOptions(k=2, max_input_tokens=10_000, prompt_style="small", answer_grammar=True, one_line_answer=True)
    out = evaluate(engine, CharTokenizer(), {"lb2": [MC]}, options)
    assert out["sets"]["lb2"]["mean@k"] == 1.0
    assert engine.grammars == [grounded.responder_grammar("doc_mc")]
    assert "Answer in one line" in CharTokenizer().decode(engine.prompts[0])


def test_middle_truncation_keeps_head_and_tail():
    item = EvalItem("x", "doc_general_qa", "Q?", "HEAD" + "m" * 5000 + "TAIL", None, ["a"], "s")
    tok = CharTokenizer()
    ids = build_prompt(item, tok, 1000)
    text = tok.decode(ids)
    assert len(ids) <= 1000
    assert "HEAD" in text and "TAIL" in text and text.count("m") < 1000
    with pytest.raises(BadInput):
        build_prompt(item, tok, 10)  # not even the instructions fit


def test_read_sets_refuses_bad_files(tmp_path):
    with pytest.raises(BadInput):
        read_sets([tmp_path / "missing.json"])
    sets = read_sets([ROOT / "samples" / "eval" / "longbench_v2_sample.json"])
    assert sets["longbench_v2_sample"][0].task == "doc_mc"


def test_eval_cli_on_the_tiny_model(tmp_path):
    """With its own defaults (the input budget is what the model's positions leave), `--eval-set`
    and the old `--set` (a warning), and a progress line per item in a log (stderr not a TTY)."""
    from spell.models import TINY_RANDOM, prepare_model

    model = prepare_model(TINY_RANDOM)
    out = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "spell", "eval", "--model", str(model),
         "--eval-set", str(ROOT / "samples/eval/longbench_v2_sample.json"),
         "--set", str(ROOT / "samples/eval/docmath_sample.json"), "--k", "2", "--limit", "1", "--max-new-tokens", "4",
         "--out", str(out), "--log-every", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results["sets"]) == {"longbench_v2_sample", "docmath_sample"}
    for r in results["sets"].values():
        assert r["items"] == 1 and r["k"] == 2 and 0 <= r["mean@k"] <= r["pass@k"] <= 1
    assert "--set FILE is now --eval-set FILE" in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("spell: eval: ")]
    assert lines and lines[-1].startswith("spell: eval: 2/2 items") and lines[-1].endswith("done"), proc.stderr[-2000:]
