import json

import pytest

from spell.parsing import parse_questioner, parse_verifier
from spell.prompts import (
    PROMPT_VERSION,
    grounding_messages,
    questioner_messages,
    questioner_schema,
    responder_messages,
    verifier_messages,
    verifier_schema,
)

TASKS = ("doc_general_qa", "doc_mc", "docmath_qa")
DOCS = ["Alpha report text.", {"title": "Beta", "text": "Beta body."}]
OPTIONS = {"A": "red", "B": "green", "C": "blue", "D": "gold"}


def content(messages):
    assert [m["role"] for m in messages] == ["user"]
    return messages[0]["content"]


def test_prompt_version_is_a_string():
    assert isinstance(PROMPT_VERSION, str) and PROMPT_VERSION


@pytest.mark.parametrize("task", TASKS)
def test_questioner_without_memory(task):
    text = content(questioner_messages(task, DOCS))
    assert "Alpha report text." in text and "Document 2 (Beta)" in text
    assert "```json" in text
    assert "harder" not in text


@pytest.mark.parametrize("task", TASKS)
def test_questioner_with_memory_asks_for_one_harder_different_question(task):
    memory = [
        {"question": "Q1 old?", "answer": "B", "options": OPTIONS},
        {"question": "Q2 newer?", "answer": "C", "options": OPTIONS},
    ]
    text = content(questioner_messages(task, DOCS, memory))
    assert text.index("Q1 old?") < text.index("Q2 newer?")
    assert "ONE new question" in text and "harder" in text and "different" in text
    if task == "doc_mc":
        assert "(A) red" in text


def test_questioner_structured_asks_for_bare_json():
    text = content(questioner_messages("doc_mc", DOCS, structured=True))
    assert "```json" not in text and '"reasoning"' in text


def test_responder_mc_shows_choices_and_endings():
    text = content(responder_messages("doc_mc", DOCS, "Which colour?", OPTIONS))
    assert "What is the correct answer to this question: Which colour?\nChoices:\n(A) red\n(B) green\n(C) blue\n(D) gold" in text
    assert "The correct answer is (X)" in text
    qa = content(responder_messages("doc_general_qa", DOCS, "Who?"))
    assert "The correct answer is (insert answer here)" in qa
    math = content(responder_messages("docmath_qa", DOCS, "How much?"))
    assert "Therefore, the answer is X" in math


def test_grounding_prompt_replaces_documents_with_empty():
    text = content(grounding_messages("doc_general_qa", "Who?"))
    assert "<documents>\nEmpty\n</documents>" in text
    assert "Alpha" not in text
    assert text == content(responder_messages("doc_general_qa", [], "Who?"))


def test_verifier_prompt_has_no_documents():
    text = content(verifier_messages("doc_mc", "Which colour?", "C", "C", OPTIONS))
    assert "Candidate answer: C" in text and "Reference answer: (C) blue" in text
    assert "[[YES]]" in text and "[[NO]]" in text
    assert "Alpha" not in text and "<documents>" not in text
    structured = content(verifier_messages("doc_general_qa", "Who?", None, "Ada", structured=True))
    assert '"decision"' in structured and "(no answer given)" in structured


def test_unknown_task_is_refused():
    with pytest.raises(ValueError):
        questioner_messages("poetry", DOCS)


EXAMPLES = {
    "doc_general_qa": {"reasoning": "r", "question": "Who?", "answer": "Ada"},
    "doc_mc": {"question": "Which?", "options": OPTIONS, "answer": "B"},
    "docmath_qa": {"reasoning": "r", "question": "How much?", "answer": 12.5},
}


@pytest.mark.parametrize("task", TASKS)
def test_schemas_are_plain_json_and_match_the_parser(task):
    schema = questioner_schema(task)
    json.dumps(schema)
    keys = list(schema["properties"])
    assert keys[0] == "reasoning" and "reasoning" not in schema["required"]
    assert set(schema["required"]) <= set(keys)
    record = EXAMPLES[task]
    assert set(record) <= set(keys) and set(schema["required"]) <= set(record)
    assert parse_questioner(task, json.dumps(record)).ok


def test_verifier_schema():
    schema = verifier_schema()
    assert list(schema["properties"]) == ["explanation", "decision"]
    assert schema["properties"]["decision"]["enum"] == ["YES", "NO"]
    assert parse_verifier(json.dumps({"explanation": "same", "decision": "YES"})) == 1
