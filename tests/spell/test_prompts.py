import json

import pytest

from spell import prompts
from spell.parsing import parse_questioner, parse_verifier
from spell.prompts import (
    PROMPT_VERSION,
    format_documents,
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
MEMORY = [
    {"question": "Q1 old?", "answer": "B", "options": OPTIONS},
    {"question": "Q2 newer?", "answer": "C", "options": OPTIONS},
]


def content(messages):
    assert [m["role"] for m in messages] == ["user"]
    return messages[0]["content"]


def test_prompt_version_names_this_wording():
    assert PROMPT_VERSION == "spell-prompts-2026.12-3"


def test_an_unknown_style_or_task_is_refused():
    with pytest.raises(ValueError, match="prompt style"):
        questioner_messages("doc_mc", DOCS, style="poetic")
    with pytest.raises(ValueError):
        questioner_messages("poetry", DOCS)


# --- the small style (cpu-demo): today's wording -----------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_small_questioner_without_memory(task):
    text = content(questioner_messages(task, DOCS, style="small"))
    assert text.startswith("You write exam questions")
    assert "Alpha report text." in text and "Document 2 (Beta)" in text
    assert "```json" in text
    assert "harder" not in text


@pytest.mark.parametrize("task", TASKS)
def test_small_questioner_with_memory_asks_for_one_harder_different_question(task):
    text = content(questioner_messages(task, DOCS, MEMORY, style="small"))
    assert text.index("Q1 old?") < text.index("Q2 newer?")
    assert "ONE new question" in text and "harder" in text and "different" in text
    if task == "doc_mc":
        assert "(A) red" in text


def test_small_documents_carry_their_number_in_the_cluster():
    # The questioner saw documents 2 and 5 of a cluster; the responder sees 1..5: both name the
    # same text "Document 5".
    seen = [{"text": "second", "number": 2}, {"text": "fifth", "number": 5}]
    everything = [{"text": t, "number": i} for i, t in enumerate(["first", "second", "third", "fourth", "fifth"], 1)]
    q = content(questioner_messages("doc_general_qa", seen, style="small"))
    r = content(responder_messages("doc_general_qa", everything, "Who?", style="small"))
    assert "Document 2:\nsecond" in q and "Document 5:\nfifth" in q and "Document 1" not in q
    assert "Document 2:\nsecond" in r and "Document 5:\nfifth" in r
    # without a number, the position
    assert format_documents(["x", "y"], style="small") == "Document 1:\nx\n\nDocument 2:\ny"


def test_small_questioner_structured_asks_for_bare_json():
    text = content(questioner_messages("doc_mc", DOCS, structured=True, style="small"))
    assert "```json" not in text and '"reasoning"' in text


def test_small_responder_mc_shows_choices_and_endings():
    text = content(responder_messages("doc_mc", DOCS, "Which colour?", OPTIONS, style="small"))
    assert "What is the correct answer to this question: Which colour?\nChoices:\n(A) red\n(B) green\n(C) blue\n(D) gold" in text
    assert "The correct answer is (X)" in text
    qa = content(responder_messages("doc_general_qa", DOCS, "Who?", style="small"))
    assert "The correct answer is (insert answer here)" in qa
    math = content(responder_messages("docmath_qa", DOCS, "How much?", style="small"))
    assert "Therefore, the answer is X" in math


def test_small_grounding_prompt_replaces_documents_with_empty():
    text = content(grounding_messages("doc_general_qa", "Who?", style="small"))
    assert "<documents>\nEmpty\n</documents>" in text
    assert "Alpha" not in text
    assert text == content(responder_messages("doc_general_qa", [], "Who?", style="small"))


def test_small_verifier_prompt_has_no_documents():
    text = content(verifier_messages("doc_mc", "Which colour?", "C", "C", OPTIONS, style="small"))
    assert "Candidate answer: C" in text and "Reference answer: (C) blue" in text
    assert "[[YES]]" in text and "[[NO]]" in text
    assert "Alpha" not in text and "<documents>" not in text
    structured = content(verifier_messages("doc_general_qa", "Who?", None, "Ada", structured=True, style="small"))
    assert '"decision"' in structured and "(no answer given)" in structured


# --- the release style (paper-7b) ---------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_release_questioner_asks_for_standalone_questions_over_unlabelled_documents(task):
    text = content(questioner_messages(task, DOCS, target_letter="C"))  # the default style
    assert "We are building a benchmark" in text
    assert '"Document 1", "Article 2"' in text and "Never refer to the documents by position" in text
    # the documents are unlabelled, between <text> tags, a title as their first line
    assert "<text>\nAlpha report text.\nBeta\nBeta body.\n</text>" in text
    assert "Document 2" not in text.replace('"Document 1", "Article 2"', "")
    # the record: a fenced json block after the reasoning
    assert "```json" in text and text.index("## Output format") < text.index("<text>\n")
    assert "Escalate" not in text and "Previous examples" not in text
    if task == "doc_general_qa":
        assert "ALL the documents" in text and "at most 20 tokens" in text
    if task == "docmath_qa":
        assert "single, non-zero number" in text and "at most 10" in text
    if task == "doc_mc":
        assert "the correct option must be (C)" in text and "distinct error path" in text


@pytest.mark.parametrize(
    "task, kinds",
    [
        ("docmath_qa", ["period-over-period change", "ratio or metric derivation", "aggregation and filtering", "projection or implication"]),
        ("doc_general_qa", ["quantitative reasoning and calculation", "comparative and superlative", "conditional or causal reasoning", "synthesis across data types"]),
        ("doc_mc", ["quantitative reasoning and calculation", "comparative and superlative", "conditional or causal reasoning", "synthesis across data types"]),
    ],
)
def test_release_questioner_with_memory_names_the_harder_reasoning_types(task, kinds):
    text = content(questioner_messages(task, DOCS, MEMORY))
    assert "ONE new, significantly more difficult" in text and "fundamentally different" in text
    assert "**Escalate the difficulty**" in text
    for kind in kinds:
        assert kind in text
    # the examples come after the documents, oldest first
    assert text.index("</text>") < text.index("## Previous examples") < text.index("Q1 old?") < text.index("Q2 newer?")
    if task == "doc_mc":
        assert "(A) red" in text


def test_release_questioner_structured_asks_for_bare_json():
    text = content(questioner_messages("docmath_qa", DOCS, structured=True))
    assert "```json" not in text and '"reasoning"' in text


def test_release_responder_prompts_per_task():
    qa = content(responder_messages("doc_general_qa", DOCS, "Who?"))
    assert "<text>\nAlpha report text.\nBeta\nBeta body.\n</text>" in qa
    assert "Question: Who?" in qa and 'The correct answer is (insert answer here).' in qa
    mc = content(responder_messages("doc_mc", DOCS, "Which colour?", OPTIONS))
    assert "What is the correct answer to this question: Which colour?\nChoices:\n(A) red\n(B) green\n(C) blue\n(D) gold" in mc
    assert "Question: Which" not in mc
    math = content(responder_messages("docmath_qa", DOCS, "How much?"))
    assert "step by step" in math and 'Therefore, the answer is (insert answer here)' in math
    assert "<text>\nEmpty\n</text>" in content(grounding_messages("docmath_qa", "How much?"))


def test_release_verifier_compares_without_solving_with_a_numeric_tolerance():
    text = content(verifier_messages("doc_mc", "Which colour?", "C", "B", OPTIONS))
    assert "without attempting to solve the problem" in text
    assert "0.15% tolerance" in text
    assert '"[[YES]]" or "[[NO]]"' in text
    # as the release: the question with its choices, the two answers as extracted (MC: letters)
    assert "- Problem: What is the correct answer to this question: Which colour?\nChoices:\n(A) red" in text
    assert "- Answer 1: C\n- Answer 2: B" in text
    assert "<text>" not in text
    structured = content(verifier_messages("docmath_qa", "How much?", None, "12", structured=True))
    assert '"decision"' in structured and "(no answer given)" in structured


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
    assert parse_questioner(task, json.dumps(record), strict=True).ok  # a whole-text record


def test_verifier_schema():
    schema = verifier_schema()
    assert list(schema["properties"]) == ["explanation", "decision"]
    assert schema["properties"]["decision"]["enum"] == ["YES", "NO"]
    assert parse_verifier(json.dumps({"explanation": "same", "decision": "YES"})) == 1


def test_the_end_of_turn_token_is_im_end_else_eos_else_none():
    class Tokenizer:
        unk_token_id = 0

        def __init__(self, vocab, eos):
            self.vocab, self.eos_token_id = vocab, eos

        def convert_tokens_to_ids(self, token):
            return self.vocab.get(token, self.unk_token_id)

    assert prompts.end_of_turn_id(Tokenizer({"<|im_end|>": 2}, eos=7)) == 2
    assert prompts.end_of_turn_id(Tokenizer({}, eos=7)) == 7
    assert prompts.end_of_turn_id(Tokenizer({}, eos=None)) is None
