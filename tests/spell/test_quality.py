"""The question-quality rule on hand-checked records (spell/quality.py), including the records the
learning issue quoted from a SmolLM2 run."""

from __future__ import annotations

import pytest

from spell.quality import check_question, derived_numbers, numbers_in, question_quality

DOCS = [
    {"title": "The Quill Mill", "text": "In 1823 the engineer Tobias Quill built the first mill on the River Senn. "
                                        "It was paid for by Aldous Varrow, the town's first mayor."},
    {"title": "The charter", "text": "Harrowmere received its charter in 1838. The Varrow Wool Hall sold 1,250 fleeces that year."},
]
REPORT = [{"title": "Q1 results", "text": "Revenue was 70.0 million, up from 64.5 million. Marine Instruments earned 21.4 million."}]


def code(task, question, answer, options=None, docs=DOCS):
    return question_quality(task, question, answer, options, docs).code


@pytest.mark.parametrize("question, answer", [
    ("Who built the first mill on the River Senn?", "Tobias Quill"),
    ("In which year did Harrowmere receive its charter?", "1838"),
    ("Is it true that Aldous Varrow paid for the mill?", "yes, Aldous Varrow"),
    ("According to the records, who was the town's first mayor?", "Aldous Varrow"),
])
def test_well_formed_grounded_questions_pass(question, answer):
    assert question_quality("doc_general_qa", question, answer, None, DOCS).ok


@pytest.mark.parametrize("question, expected", [
    ("Does the answer to the", "not_a_question"),  # seen in a SmolLM2 run: no "?"
    ("The question is not only impossible but also impossible to answer...", "not_a_question"),
    ("An optional JSON object", "not_a_question"),
    ("What is the answer to the answer to the answer to the question?", "meta_text"),
    ("What does the json field say?", "meta_text"),
    ("What did Document 2 say about the charter?", "meta_text"),
    ("Who built who built who built the mill?", "repetitive"),
    ("Mill?", "fragment"),
    ("Who " + "very " * 70 + "built it?", "too_long"),
    ("Who built the first mill on the River Senn", "not_a_question"),
    ("In 1823 the engineer Tobias Quill built the first mill on the River Senn?", "not_a_question"),
])
def test_the_question_itself_is_checked(question, expected):
    assert code("doc_general_qa", question, "Tobias Quill") == expected


def test_a_sentence_of_the_documents_with_a_question_mark_is_refused():
    q = "Was it paid for by Aldous Varrow, the town's first mayor?"
    assert check_question(q).ok  # on its own it reads like a question
    assert check_question("It was paid for by Aldous Varrow, the town's first mayor?", "x").code == "not_a_question"
    copied = "Is it was paid for by Aldous Varrow the town's first mayor?"
    assert check_question(copied, "is it was paid for by aldous varrow the town's first mayor").code == "copied_sentence"


def test_a_qa_answer_must_be_in_the_documents_and_not_in_the_question():
    assert code("doc_general_qa", "Who built the first mill?", "explained") == "answer_not_grounded"  # seen in a run
    assert code("doc_general_qa", "Who built the first mill?", "Cecil Quill") == "answer_not_grounded"
    assert code("doc_general_qa", "Did Tobias Quill build the first mill?", "Tobias Quill") == "answer_in_question"
    assert code("doc_general_qa", "Who built the first mill?", "the") == "answer_not_grounded"  # "the" is in them, but no content
    assert code("doc_general_qa", "Who built the first mill?", "yes") == "answer_not_grounded"  # yes/no only answers yes/no questions
    assert code("doc_general_qa", "Did Aldous Varrow pay for the mill?", "Yes") == ""
    assert code("doc_general_qa", "Who built the first mill?", "!!") == "answer_not_grounded"


def test_mc_needs_distinct_options_and_a_grounded_right_option():
    options = {"A": "Tobias Quill", "B": "Aldous Varrow", "C": "Elspeth Varrow", "D": "Ida Brannock"}
    assert code("doc_mc", "Who built the first mill?", "A", options) == ""
    assert code("doc_mc", "Who built the first mill?", "C", options) == "answer_not_grounded"  # Elspeth is not in DOCS
    same = {**options, "B": "tobias quill."}
    assert code("doc_mc", "Who built the first mill?", "A", same) == "options_not_distinct"
    fragment = {"A": "The answer to the", "B": "The answer to", "C": "x", "D": "y"}
    assert code("doc_mc", "An optional JSON object", "A", fragment) == "not_a_question"  # seen in a run


def test_docmath_accepts_a_stated_number_or_one_operation_on_two():
    q = "By how many million did revenue grow?"
    assert code("docmath_qa", q, 5.5, docs=REPORT) == ""  # 70.0 - 64.5
    assert code("docmath_qa", q, "8.53%", docs=REPORT) == ""  # (70.0 - 64.5) / 64.5 * 100 = 8.527
    assert code("docmath_qa", "What share of revenue did Marine earn, in percent?", 30.57, docs=REPORT) == ""  # 21.4/70
    assert code("docmath_qa", q, 21.4, docs=REPORT) == ""  # a number of the documents
    assert code("docmath_qa", q, 13.3, docs=REPORT) == "number_not_derived"  # 70 - 64.5 - 21.4 needs two operations
    assert code("docmath_qa", q, "many", docs=REPORT) == "number_not_derived"


def test_numbers_in_reads_thousands_and_signs_and_derived_numbers_covers_the_operations():
    assert numbers_in("sold 1,250 fleeces in 1838, -3.5 and 1,250 again; item2 is not a number") == [1250.0, 1838.0, -3.5]
    assert set(derived_numbers([6.0, 3.0])) >= {6.0, 3.0, 9.0, 3.0, -3.0, 18.0, 2.0, 0.5, 200.0, 50.0, -50.0, 100.0}


SEEN = [  # records SmolLM2 wrote under the evidence grammar (2026-12-01), on the Osmir / Tessellate notes
    ("Who built the lighthouse at Cape Morrow?", "Lake Osmir", "off_topic"),  # the prompt's example, copied
    ("Who was the person who created the data loss report?", "1142", "wrong_answer_type"),
    ("What is the name of the 19th-century British writer who wrote about the impact of climate change?", "2036", "off_topic"),
]
OSMIR = [{"title": "Ice records", "text": "The early break-up was followed by the hot summer of 2036, when buoy Osmir-3 "
                                          "measured a surface temperature of 24.3 degrees. The data loss report of issue 1142 "
                                          "was written by Imre Vantongeren. Lake Osmir froze late in 2037."}]


@pytest.mark.parametrize("question, answer, expected", SEEN)
def test_records_seen_in_a_run_are_refused_for_the_right_reason(question, answer, expected):
    assert code("doc_general_qa", question, answer, docs=OSMIR) == expected


@pytest.mark.parametrize("question, answer, expected", [
    ("When did buoy Osmir-3 measure a surface temperature of 24.3 degrees?", "summer of 2036", ""),
    ("When did buoy Osmir-3 measure a surface temperature of 24.3 degrees?", "Imre Vantongeren", "wrong_answer_type"),
    ("How many degrees did buoy Osmir-3 measure in the hot summer?", "24.3 degrees", ""),
    ("How many degrees did buoy Osmir-3 measure in the hot summer?", "Lake Osmir", "wrong_answer_type"),
    ("Who wrote the data loss report of issue 1142?", "Imre Vantongeren", ""),
    ("Who wrote the data loss report of issue 1142?", "2037", "wrong_answer_type"),
    ("Which lake froze late in 2037?", "Lake Osmir", ""),
    ("In which year did the lake freeze late?", "Lake Osmir", "wrong_answer_type"),
    ("Which lake, Lake Osmir or another, froze late?", "Lake Osmir", "answer_in_question"),
    ("Which lake measured a surface temperature of 24.3 degrees?", "Imre Vantongeren", "answer_out_of_place"),
])
def test_the_answer_must_be_of_the_asked_type_and_stated_where_the_topic_is(question, answer, expected):
    assert code("doc_general_qa", question, answer, docs=OSMIR) == expected
