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
    "answer, status, value",
    [
        (12.5, OK, 12.5),
        ("1,234", OK, 1234.0),
        ("$3.5 million", OK, 3.5),
        ("-7", OK, -7.0),
        ("10 - 4 = 6", OK, 6.0),  # a calculation: its result
        # zero, or no number at all: dropped (reward 0, not trained), the release's rule
        (0, DROPPED, None),
        ("0.0", DROPPED, None),
        ("many", DROPPED, None),
        (True, DROPPED, None),
        # not a string or a number: a malformed record, -1
        (None, FORMAT_ERROR, None),
        ([12], FORMAT_ERROR, None),
        ({"value": 12}, FORMAT_ERROR, None),
    ],
)
def test_questioner_docmath_answer(answer, status, value):
    q = parse_questioner("docmath_qa", fenced({"question": "How much?", "answer": answer}))
    assert q.status == status
    if status == OK:
        assert q.answer_value == value
    else:
        assert q.reason


def test_strict_record_reads_as_the_release_does():
    record = {"question": "Who?", "answer": "Ada"}
    fenced_text = fenced(record)
    whole = json.dumps(record)
    # read by both: the last ```json block that parses, or the whole answer part
    for text in (fenced_text, whole, "<think>hm</think>" + whole):
        assert parse_questioner("doc_general_qa", text, strict=True).ok, text
    # the lenient reading only: an object embedded in prose, an untagged fence, a raw tab in a string
    embedded = "Here it is: " + whole + " Done."
    untagged = "```\n" + whole + "\n```"
    raw_tab = '{"question": "Who\tsigned?", "answer": "Ada"}'.replace("\\t", "\t")
    for text in (embedded, untagged, raw_tab):
        assert parse_questioner("doc_general_qa", text).ok, text
        strict = parse_questioner("doc_general_qa", text, strict=True)
        assert strict.status == FORMAT_ERROR and strict.reason == "no JSON record found", text
    # the last json block that parses decides, even when it is not an object (then: no record)
    listed = fenced(record) + "```json\n[1, 2]\n```"
    assert parse_questioner("doc_general_qa", listed, strict=True).status == FORMAT_ERROR
    assert parse_questioner("doc_general_qa", listed).ok  # lenient: the last block that is an object


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


@pytest.mark.parametrize(
    "text, letter",
    [
        ("The correct answer is (B)", "B"),
        # the release's pattern order decides, not the position: (B) after "correct answer is"
        # wins over a later "answer is C"
        ("The correct answer is (B). Some say the answer is C", "B"),
        ("(B) looks right, but the correct answer is C", "C"),
        ("The answer is (A), so the correct answer is D", "D"),
        ("\\boxed{A} ... The correct answer is (D)", "A"),
        # the last match of the deciding pattern
        ("The correct answer is (A)? No: the correct answer is (C).", "C"),
        ("The correct answer is **(D)**.", "D"),
        ("The correct answer is: B", "B"),
        # a word is not a letter; a lower-case letter is not a choice
        ("the answer is Denver", None),
        ("The correct answer is a bridge", None),
        ("no marker (B)", None),
    ],
)
def test_mc_letter_follows_the_release_priority(text, letter):
    assert extract_answer("doc_mc", text) == letter


def test_a_boxed_calculation_is_read_by_its_result():
    assert extract_answer("docmath_qa", "so \\boxed{10-4=6}") == "10-4=6"
    assert parse_number("10-4=6") == 6.0
    assert parse_number("10/3 \\approx 3.33") == 3.33
    assert rule_score("docmath_qa", "Therefore \\boxed{10-4=6}.", "6") == 1.0
    assert rule_score("docmath_qa", "Therefore \\boxed{10-4=6}.", "10") == 0.0
    assert rule_score("docmath_qa", "Therefore, the answer is 2 x 3 = 6.", "6") == 1.0


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
        # bare decisions, as the release reads them: capital YES / NO, the other absent
        ("Explanation: same city.\nDecision: YES", 1),
        ("Explanation: different years.\nDecision: NO", 0),
        ("NOTE: both name Paris. Decision: YES", 1),  # a word containing NO is not a NO
        ("YES, but also NO", -1),
        ("there is no answer here, yes", -1),  # lower-case prose is no decision
        ("[[NO]] although YES at first", 0),  # brackets win
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


def test_questioner_reads_the_small_styles_labelled_lines_leniently_only():
    qa = "Evidence: The mill opened in 1851.\nQuestion: When did the mill open?\nAnswer: 1851"
    got = parse_questioner("doc_general_qa", qa)
    assert got.ok and got.question == "When did the mill open?" and got.answer == "1851"
    assert got.record["evidence"] == "The mill opened in 1851."
    mc = qa.replace("Answer: 1851", "Answer: 1851\nWrong: 1850\nWrong: 1900\nWrong: 1799")
    got = parse_questioner("doc_mc", mc)
    assert got.ok and got.options[got.answer] == "1851" and sorted(got.options.values()) == ["1799", "1850", "1851", "1900"]
    # two wrong options: no four choices, a format error; the strict (release) reading refuses lines
    assert parse_questioner("doc_mc", mc.replace("Wrong: 1799", "")).status == FORMAT_ERROR
    assert parse_questioner("doc_general_qa", qa, strict=True).status == FORMAT_ERROR
