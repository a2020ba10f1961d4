"""Eval-set readers on samples/eval, detection, errors, and middle truncation."""

import json
from pathlib import Path

import pytest

from spell.data.evalsets import (EvalSetFormatError, detect_format, format_number, middle_truncate, read_docmath,
                                 read_eval_set, read_longbench_qa, read_longbench_v2)

EVAL = Path(__file__).resolve().parents[3] / "samples" / "eval"


def test_longbench_v2_items_are_multiple_choice():
    items = read_longbench_v2(EVAL / "longbench_v2_sample.json")
    assert len(items) == 6
    first = items[0]
    assert first.task == "doc_mc" and first.source == "longbench_v2"
    assert first.choices == ["Tobias Quill", "Cecil Quill", "Hector Quill", "Ida Brannock"]
    assert first.answers == ["B"]
    assert "Brannock Bridge" in first.context
    assert first.meta["difficulty"] == "easy"


def test_longbench_qa_items_keep_every_accepted_answer():
    items = read_longbench_qa(EVAL / "longbench_qa_sample.jsonl")
    assert len(items) == 6
    assert all(item.task == "doc_general_qa" and item.choices is None for item in items)
    assert items[0].answers == ["44", "forty-four"]
    assert items[0].source == "spell_sample_qa"


def test_docmath_items_answer_with_the_ground_truth_number():
    items = read_docmath(EVAL / "docmath_sample.json")
    assert len(items) == 6
    assert [item.answers for item in items] == [["24.14"], ["13.21"], ["-1.8"], ["36"], ["0.64"], ["1.48"]]
    assert items[0].task == "docmath_qa"
    assert "| Total | 70.0 | 76.8 | 82.8 | 86.9 | 316.5 |" in items[0].context
    assert items[3].meta["ground_truth"] == 36.0


def test_docmath_python_solution_is_never_run(tmp_path: Path):
    record = {"question_id": "q", "source": "s", "question": "?", "paragraphs": ["p"], "table_evidence": [],
              "paragraph_evidence": [], "ground_truth": 2.5,
              "python_solution": "raise SystemExit('executed')"}
    path = tmp_path / "docmath.json"
    path.write_text(json.dumps([record]))
    assert read_eval_set(path)[0].answers == ["2.5"]


@pytest.mark.parametrize("name, fmt", [("longbench_v2_sample.json", "longbench_v2"),
                                       ("longbench_qa_sample.jsonl", "longbench_qa"),
                                       ("docmath_sample.json", "docmath")])
def test_formats_are_detected(name, fmt):
    assert detect_format(EVAL / name) == fmt
    assert read_eval_set(EVAL / name) == read_eval_set(EVAL / name, fmt)


def test_every_sample_question_is_answerable_from_its_context():
    for item in read_eval_set(EVAL / "longbench_qa_sample.jsonl"):
        assert any(answer in item.context for answer in item.answers), item.id


def test_an_unknown_format_gets_a_clear_error(tmp_path: Path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps([{"prompt": "?", "completion": "!"}]))
    with pytest.raises(EvalSetFormatError, match="unknown eval-set format.*completion, prompt"):
        read_eval_set(path)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"_id": "1", "question": "q", "choice_A": "a", "choice_B": "b", "choice_C": "c", "choice_D": "d",
          "answer": "E", "context": "x"}, "'answer' must be one of A, B, C, D"),
        ({"_id": "1", "input": "q", "context": "x", "answers": []}, "'answers' must be a non-empty list"),
        ({"question_id": "1", "question": "q", "paragraphs": ["p"], "ground_truth": "12"}, "'ground_truth' must be a number"),
        ({"question_id": "1", "question": "q", "paragraphs": "p", "ground_truth": 1}, "'paragraphs'"),
    ],
)
def test_bad_records_name_the_field_and_record(tmp_path: Path, record, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(EvalSetFormatError, match=message) as caught:
        read_eval_set(path)
    assert "record 1" in str(caught.value)


def test_broken_json_lines_name_the_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"_id": "1", "input": "q", "context": "c", "answers": ["a"]}\n{broken\n')
    with pytest.raises(EvalSetFormatError, match="line 2: not valid JSON"):
        read_eval_set(path)


def test_an_empty_file_is_an_error(tmp_path: Path):
    path = tmp_path / "empty.json"
    path.write_text("  ")
    with pytest.raises(EvalSetFormatError, match="empty"):
        read_eval_set(path)


def test_a_file_that_is_not_utf8_is_a_format_error(tmp_path: Path):
    path = tmp_path / "latin.json"
    path.write_bytes(b'[{"question": "caf\xe9"}]')
    with pytest.raises(EvalSetFormatError, match="not UTF-8"):
        read_eval_set(path)


def test_numbers_print_without_spurious_decimals():
    assert [format_number(v) for v in (36.0, 24.14, -1.8, 7, 1e20)] == ["36", "24.14", "-1.8", "7", "1e+20"]


def test_middle_truncate_keeps_head_and_tail():
    tokens = list(range(10))
    assert middle_truncate(tokens, 20) == tokens
    assert middle_truncate(tokens, 4) == [0, 1, 8, 9]
    assert middle_truncate(tokens, 5) == [0, 1, 7, 8, 9]
    assert middle_truncate(tokens, 1) == [9]
    assert middle_truncate(tokens, 0) == []
    with pytest.raises(ValueError):
        middle_truncate(tokens, -1)


def test_stored_items_read_back_as_they_were_and_bad_ones_are_refused(tmp_path):
    import dataclasses

    original = read_eval_set(EVAL / "longbench_v2_sample.json")
    stored = tmp_path / "items.jsonl"
    stored.write_text("".join(json.dumps(dataclasses.asdict(i)) + "\n" for i in original))
    assert detect_format(stored) == "items"
    assert read_eval_set(stored) == original
    bad = dataclasses.asdict(original[0]) | {"task": "essay"}
    stored.write_text(json.dumps(bad) + "\n")
    with pytest.raises(EvalSetFormatError, match="'task' must be one of"):
        read_eval_set(stored)
