"""The held-out sets in samples/eval/ (scripts/make_heldout_sets.py) and bench/learning.py's report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from spell.data.evalsets import read_eval_set

ROOT = Path(__file__).resolve().parents[2]
MC = ROOT / "samples/eval/heldout_towns_mc.json"
QA = ROOT / "samples/eval/heldout_towns_qa.jsonl"


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_sets_are_the_generators_output_and_read_as_evaluation_sets():
    make = load("scripts/make_heldout_sets.py", "make_heldout_sets")
    mc, qa = make.build(25, 2026)
    assert json.loads(MC.read_text()) == mc
    assert [json.loads(line) for line in QA.read_text().splitlines()] == qa
    mc_items, qa_items = read_eval_set(MC), read_eval_set(QA)
    assert len(mc_items) >= 100 and len(qa_items) >= 100
    assert {i.task for i in mc_items} == {"doc_mc"} and {i.task for i in qa_items} == {"doc_general_qa"}


def test_no_town_of_the_sets_is_in_the_training_corpus_and_no_answer_is_in_its_question():
    corpus = (ROOT / "samples/corpus/sample.jsonl").read_text()
    items = read_eval_set(MC) + read_eval_set(QA)
    # a context is three towns' documents, each a title line and a text
    towns = {title for i in items for title in i.context.split("\n\n")[::2]}
    assert len(towns) >= 20 and not [t for t in towns if t in corpus]
    for item in items:
        answer = item.choices["ABCD".index(item.answers[0])] if item.choices else item.answers[0]
        assert answer not in item.question
        assert answer in item.context  # stated in its own town's document
        assert len(item.context.split("\n\n")) == 6  # three towns: a title and a text each
    # the sets ask about different facts
    assert not {i.question for i in read_eval_set(MC)} & {i.question for i in read_eval_set(QA)}


def _events(seq, step, type_, payload, t):
    return json.dumps({"v": 1, "seq": seq, "type": type_, "step": step, "attempt": 1, "time": t, "payload": payload})


def _evaluation(means, **extra):
    return {"sets": {"mc": {"items": 4, "k": 4, "mean@k": sum(means) / 4, "pass@k": 0.5, "item_means": means}},
            "mean": sum(means) / 4, "seconds": 5.0, **extra}


def test_after_a_warm_up_the_learning_report_gives_self_plays_own_change_apart(tmp_path):
    bench = load("bench/learning.py", "learning_bench")
    lines = [_events(0, 0, "eval", _evaluation([0.0, 0.0, 0.25, 0.0]), 0.0),
             _events(1, 0, "eval", _evaluation([0.25, 0.0, 0.25, 0.0], after_warmup=True), 50.0),
             _events(2, 1, "eval", _evaluation([0.5, 0.25, 0.25, 0.0]), 110.0)]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    before, warmed, last = (row["sets"]["mc"] for row in bench.report(tmp_path)["rows"])
    assert "change" not in before and "selfplay_change" not in before
    assert warmed["change"]["delta"] == pytest.approx(0.0625) and "selfplay_change" not in warmed
    assert last["change"]["delta"] == pytest.approx(0.1875)
    assert last["selfplay_change"]["delta"] == pytest.approx(0.125)  # since the warm-up only


def test_the_learning_report_pairs_each_evaluation_with_step_0(tmp_path):
    bench = load("bench/learning.py", "learning_bench")

    def metrics(quality, tp, pos, tn, neg):
        return {"questioner": {"question_quality": quality, "samples": 9},
                "verifier": {"true_positives": tp, "rule_positives": pos, "true_negatives": tn, "rule_negatives": neg},
                "responder": {"no_answer_rate": 0.0}, "time": {"total": 60.0}}

    lines = [_events(0, 0, "eval", _evaluation([0.0, 0.25, 0.5, 0.0]), 0.0),
             _events(1, 1, "metrics", metrics(0.5, 1, 2, 0, 2), 60.0),
             _events(2, 2, "metrics", metrics(1.0, 2, 2, 1, 2), 120.0),
             _events(3, 2, "eval", _evaluation([0.5, 0.25, 0.5, 0.25]), 130.0),
             _events(4, 2, "log", {"message": "finished", "level": "info"}, 131.0)]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = bench.report(tmp_path)
    first, last = result["rows"]
    assert "change" not in first["sets"]["mc"] and first["train"] is None
    change = last["sets"]["mc"]["change"]
    assert change["delta"] == pytest.approx(0.1875) and change["low"] <= change["delta"] <= change["high"]
    assert last["train"]["question_quality"] == 0.75 and last["train"]["steps"] == [1, 2]
    assert last["train"]["verifier_tpr"] == 0.75 and last["train"]["verifier_tnr"] == 0.25
    assert result["finished"] and result["steps"] == 2 and result["wall_seconds"] == 131.0
    bench.print_table(result)  # prints without error
