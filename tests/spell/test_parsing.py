import builtins
import contextlib
import json
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spell import parsing
from spell.answers import last_boxed, parse_number
from spell.parsing import (
    DROPPED,
    FORMAT_ERROR,
    OK,
    extract_answer,
    extract_record,
    parse_questioner,
    parse_verifier,
    split_think,
)
from spell.rewards import rule_score

TASKS = ("doc_general_qa", "doc_mc", "docmath_qa")


def fenced(obj):
    return "Let me think about the documents.\n```json\n" + json.dumps(obj) + "\n```\n"


# --- think -------------------------------------------------------------------------------------


def test_split_think():
    assert split_think("plain") == "plain"
    assert split_think("<think>a</think> b") == " b"
    assert split_think("<think>a</think>b</think>c") == "c"  # after the LAST </think>
    assert split_think("<think>never closed") is None
    assert split_think("reasoning</think>answer") == "answer"  # template opened the think


# --- questioner --------------------------------------------------------------------------------


def test_questioner_qa_fenced():
    q = parse_questioner("doc_general_qa", fenced({"question": "Who?", "answer": "Ada Lovelace"}))
    assert q.status == OK and q.ok
    assert (q.question, q.answer) == ("Who?", "Ada Lovelace")


def test_questioner_takes_last_fenced_block_that_parses():
    text = (
        fenced({"question": "old", "answer": "x"})
        + "```json\n{broken\n```\n"
        + fenced({"question": "new", "answer": "y"})
        + "```json\n{not json either}\n```"
    )
    q = parse_questioner("doc_general_qa", text)
    assert q.question == "new" and q.answer == "y"


def test_questioner_whole_text_and_structured_forms():
    whole = json.dumps({"reasoning": "r", "question": "Q?", "answer": "A"})
    assert parse_questioner("doc_general_qa", whole).ok
    embedded = "Sure! " + whole + " Hope this helps."
    assert parse_questioner("doc_general_qa", embedded).ok
    two = whole + " and " + whole
    assert parse_questioner("doc_general_qa", two).status == FORMAT_ERROR


def test_questioner_mc_validation():
    good = {"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer": "(C)"}
    q = parse_questioner("doc_mc", fenced(good))
    assert q.ok and q.answer == "C" and q.options == {"A": "a", "B": "b", "C": "c", "D": "d"}
    missing = dict(good, options={"A": "a", "B": "b", "C": "c"})
    assert parse_questioner("doc_mc", fenced(missing)).status == FORMAT_ERROR
    extra = dict(good, options={"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"})
    assert parse_questioner("doc_mc", fenced(extra)).status == FORMAT_ERROR
    bad_letter = dict(good, answer="E")
    r = parse_questioner("doc_mc", fenced(bad_letter))
    assert r.status == FORMAT_ERROR and "letter" in r.reason
    empty_option = dict(good, options={"A": "a", "B": "", "C": "c", "D": "d"})
    assert parse_questioner("doc_mc", fenced(empty_option)).status == FORMAT_ERROR
    as_list = dict(good, options=["a", "b", "c", "d"])
    assert parse_questioner("doc_mc", fenced(as_list)).status == FORMAT_ERROR


@pytest.mark.parametrize(
    "answer, ok, value",
    [
        (12.5, True, 12.5),
        ("1,234", True, 1234.0),
        ("$3.5 million", True, 3.5),
        ("-7", True, -7.0),
        (0, False, None),
        ("0.0", False, None),
        ("many", False, None),
        (True, False, None),
        (None, False, None),
    ],
)
def test_questioner_docmath_needs_a_nonzero_number(answer, ok, value):
    q = parse_questioner("docmath_qa", fenced({"question": "How much?", "answer": answer}))
    assert q.ok is ok
    if ok:
        assert q.answer_value == value
    else:
        assert q.status == FORMAT_ERROR and q.reason


def test_questioner_qa_answer_over_40_tokens_is_dropped():
    long_answer = " ".join(["word"] * 41)
    q = parse_questioner("doc_general_qa", fenced({"question": "Q?", "answer": long_answer}))
    assert q.status == DROPPED
    ok = parse_questioner("doc_general_qa", fenced({"question": "Q?", "answer": "w " * 40}))
    assert ok.ok
    # a tokenizer-based count can be passed in
    q = parse_questioner(
        "doc_general_qa",
        fenced({"question": "Q?", "answer": "abc"}),
        count_tokens=lambda s: 100,
    )
    assert q.status == DROPPED


def test_questioner_unclosed_think_is_dropped_not_penalised():
    q = parse_questioner("doc_general_qa", "<think>" + fenced({"question": "Q", "answer": "A"}))
    assert q.status == DROPPED


@pytest.mark.parametrize(
    "text",
    ["", "no json here", "```json\n[1, 2]\n```", fenced({"answer": "A"}), fenced({"question": ""})],
)
def test_questioner_format_errors(text):
    q = parse_questioner("doc_general_qa", text)
    assert q.status == FORMAT_ERROR and q.reason


# --- responder ---------------------------------------------------------------------------------


def test_extract_answer_per_task():
    assert extract_answer("doc_general_qa", "... The correct answer is **Ada**.\nMore") == "Ada"
    assert extract_answer("doc_general_qa", "no marker") is None
    assert extract_answer("doc_mc", "The correct answer is (B)") == "B"
    assert extract_answer("docmath_qa", "x \\boxed{1,200} y") == "1,200"
    assert extract_answer("docmath_qa", "Therefore, the answer is $5 million.") == "$5 million"
    assert extract_answer("doc_mc", "<think>The correct answer is (B)") is None


def test_last_boxed_handles_nesting():
    assert last_boxed("\\boxed{1} and \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{open") is None


# --- verifier ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, decision",
    [
        ("The answers agree. [[YES]]", 1),
        ("They differ. [[NO]]", 0),
        ("[[yes]]", 1),
        ("[[YES]] or maybe [[NO]]", -1),
        ("I cannot tell.", -1),
        ("<think>[[YES]]", -1),
        ("<think>hmm [[NO]]</think> [[YES]]", 1),
        ('{"explanation": "same value", "decision": "YES"}', 1),
        ('{"explanation": "different", "decision": "NO"}', 0),
        ('{"explanation": "?", "decision": "MAYBE"}', -1),
        ('```json\n{"explanation": "x", "decision": "NO"}\n```', 0),
    ],
)
def test_parse_verifier(text, decision):
    assert parse_verifier(text) == decision


# --- properties: no exception, no code run ------------------------------------------------------

JSONISH = st.text(alphabet=st.sampled_from(list('{}[]":,\\ ABCDabcd0123456789.-e\n`json<>/think')))
TEXT = st.one_of(st.text(max_size=400), JSONISH, st.binary(max_size=200).map(lambda b: b.decode("latin-1")))

RECORDS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=12,
)


@contextlib.contextmanager
def no_eval():
    """eval / exec raise while parsers run (hypothesis itself uses exec, so only around them)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("model output must never be evaluated")

    with mock.patch.object(builtins, "eval", forbidden), mock.patch.object(builtins, "exec", forbidden):
        yield


PROPS = settings(max_examples=150, deadline=None)


@PROPS
@given(text=TEXT)
def test_every_parser_accepts_any_text(text):
    with no_eval():
        check_all_parsers(text)


def check_all_parsers(text):
    split_think(text)
    extract_record(text)
    parse_number(text)
    last_boxed(text)
    v = parse_verifier(text)
    assert v in (-1, 0, 1)
    for task in TASKS:
        q = parse_questioner(task, text)
        assert q.status in (OK, FORMAT_ERROR, DROPPED)
        a = extract_answer(task, text)
        assert a is None or isinstance(a, str)
        s = rule_score(task, text, text)
        assert 0.0 <= s <= 1.0


@PROPS
@given(record=RECORDS, task=st.sampled_from(TASKS))
def test_questioner_accepts_any_json_value(record, task):
    with no_eval():
        for text in (json.dumps(record), fenced(record)):
            q = parse_questioner(task, text)
            assert q.status in (OK, FORMAT_ERROR, DROPPED)
            if q.ok:
                assert q.question
        assert parse_verifier(json.dumps(record)) in (-1, 0, 1)


@PROPS
@given(x=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_rule_score_recovers_numbers(x):
    text = f"Therefore, the answer is {x!r}"
    if "e" in repr(x) or x == 0:
        return
    assert rule_score("docmath_qa", text, repr(x)) == 1.0
    assert rule_score("docmath_qa", text, repr(-x)) == 0.0  # the sign matters


def test_code_in_output_is_not_run(tmp_path):
    marker = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    texts = [
        f"Therefore, the answer is {payload}",
        f"\\boxed{{{payload}}}",
        fenced({"question": payload, "answer": payload}),
        payload,
    ]
    with no_eval():
        for text in texts:
            for task in TASKS:
                parse_questioner(task, text)
                rule_score(task, text, payload)
            parse_verifier(text)
    assert not marker.exists()


def test_parsing_module_does_not_use_eval():
    import inspect

    import spell.answers
    import spell.rewards

    for mod in (parsing, spell.answers, spell.rewards):
        src = inspect.getsource(mod)
        assert "eval(" not in src.replace("_eval(", "") and "exec(" not in src


def test_a_raw_tab_inside_a_json_string_is_read():
    # xgrammar's JSON grammar allows raw control characters in strings; strict json would refuse.
    from spell.parsing import parse_questioner

    parsed = parse_questioner("doc_general_qa", '{"question": "Who\\tsigned it?", "answer": "Ada\tLovelace"}'.replace("\\t", "\t"))
    assert parsed.question == "Who\tsigned it?" and parsed.answer == "Ada\tLovelace"
