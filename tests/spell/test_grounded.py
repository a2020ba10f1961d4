"""Grounded role outputs for small models (spell/grounded.py, spell/spans.py): spans, evidence
sentences, the grammars (compiled by xgrammar against SmolLM2's tokenizer) and the record readers."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from spell import grounded
from spell.grounded import (
    MAX_QUESTION_CHARS, cloze_question, clozes, evidence_candidates, mc_options, questioner_grammar, read_labelled_record,
    arithmetic_clozes, arithmetic_questions, format_number, verifier_grammar, wrong_option_lists,
)
from spell.answers import parse_number
from spell.quality import question_quality
from tests.support import REPO, accepts
from spell.spans import candidate_spans, numbers_stated, span_kind, split_sentences

MILL = ("In 1823 the engineer Tobias Quill built the first mill on the River Senn. It was paid for by Aldous "
        "Varrow, whose mother Elspeth Varrow had led 14 families to the ford in the spring of 1794. Dr. Ines Kell "
        "wrote its history. The mill burned down.")
REPORT = "Revenue was $70.0 million, up 8.5% from $64.5 million.\n| Segment | Q1 | Q2 |\n| Marine | 18.4 | 21.2 |"


def test_candidate_spans_are_names_dates_and_counted_numbers_in_order():
    assert candidate_spans([MILL]) == [
        "spring of 1794", "1823", "Tobias Quill", "River Senn", "Aldous Varrow", "Elspeth Varrow", "14",
        "14 families", "1794", "Ines Kell",
    ]
    # Table cells are line starts: their single words are not taken for names.
    assert candidate_spans([REPORT]) == ["$70.0", "$70.0 million", "8.5%", "$64.5", "$64.5 million", "18.4", "21.2"]


def test_sentences_split_on_ends_and_lines_but_not_after_titles():
    assert split_sentences(MILL)[2] == "Dr. Ines Kell wrote its history."
    assert split_sentences(REPORT) == ["Revenue was $70.0 million, up 8.5% from $64.5 million.", "| Segment | Q1 | Q2 |",
                                       "| Marine | 18.4 | 21.2 |"]


def test_evidence_sentences_state_a_span_and_are_long_enough():
    evidence = evidence_candidates([MILL])
    assert [e.sentence[:20] for e in evidence] == ["In 1823 the engineer", "It was paid for by A", "Dr. Ines Kell wrote i"[:20]]
    assert evidence[0].spans == ("1823", "Tobias Quill", "River Senn") and evidence[0].numeric
    assert not evidence[2].numeric  # "The mill burned down." states no span and is left out


def test_the_qa_grammar_takes_a_quoted_sentence_a_question_and_one_of_its_spans(compiler):
    grammar = questioner_grammar("doc_general_qa", [MILL])
    good = ("Evidence: In 1823 the engineer Tobias Quill built the first mill on the River Senn.\n"
            "Question: Who built the first mill on the River Senn?\nAnswer: Tobias Quill")
    assert accepts(compiler, grammar, good)
    assert not accepts(compiler, grammar, good.replace("Answer: Tobias Quill", "Answer: Aldous Varrow"))  # not in that sentence
    assert not accepts(compiler, grammar, good.replace("Who built", "Built"))  # no interrogative opening
    assert not accepts(compiler, grammar, good.replace("Evidence: In 1823", "Evidence: In 1824"))  # not a sentence of the text


def test_mc_wrong_options_are_three_different_spans_of_the_answers_kind(compiler):
    """Names for a name (MILL states five), in the documents' order, none twice; a year answer
    has too few other years (1823, 1794) and draws from all spans, still each once."""
    grammar = questioner_grammar("doc_mc", [MILL])
    head = ("Evidence: In 1823 the engineer Tobias Quill built the first mill on the River Senn.\n"
            "Question: Who built the first mill?\nAnswer: Tobias Quill")
    assert accepts(compiler, grammar, head + "\nWrong: River Senn\nWrong: Aldous Varrow\nWrong: Ines Kell")
    assert not accepts(compiler, grammar, head + "\nWrong: Aldous Varrow\nWrong: Aldous Varrow\nWrong: Ines Kell")
    assert not accepts(compiler, grammar, head + "\nWrong: Aldous Varrow\nWrong: Ines Kell\nWrong: 1823")  # a year
    assert not accepts(compiler, grammar, head + "\nWrong: Ines Kell\nWrong: Aldous Varrow\nWrong: River Senn")  # order
    year = ("Evidence: In 1823 the engineer Tobias Quill built the first mill on the River Senn.\n"
            "Question: When was the first mill built?\nAnswer: 1823")
    assert accepts(compiler, grammar, year + "\nWrong: spring of 1794\nWrong: 14\nWrong: 1794")
    assert not accepts(compiler, grammar, year + "\nWrong: 1794\nWrong: 14\nWrong: 1794")


def test_an_mc_answer_is_never_its_own_wrong_option_nor_part_of_one(compiler):
    """SmolLM2 chose the answer itself as a wrong option ("Lindqvist Bay" twice) and "30" beside
    "30 centimetres": the answer's wrong options leave out every span that overlaps it."""
    grammar = questioner_grammar("doc_mc", [MILL])
    head = ("Evidence: It was paid for by Aldous Varrow, whose mother Elspeth Varrow had led 14 families to the ford "
            "in the spring of 1794.\nQuestion: Who paid for it?\nAnswer: Aldous Varrow")
    assert accepts(compiler, grammar, head + "\nWrong: Tobias Quill\nWrong: River Senn\nWrong: Elspeth Varrow")
    assert not accepts(compiler, grammar, head + "\nWrong: Tobias Quill\nWrong: Aldous Varrow\nWrong: Ines Kell")
    numbers = ("Evidence: It was paid for by Aldous Varrow, whose mother Elspeth Varrow had led 14 families to the ford "
               "in the spring of 1794.\nQuestion: How many families did she lead?\nAnswer: 14 families")
    assert accepts(compiler, grammar, numbers + "\nWrong: spring of 1794\nWrong: 1823\nWrong: 1794")
    assert not accepts(compiler, grammar, numbers + "\nWrong: 1823\nWrong: 14\nWrong: 1794")  # "14" is in the answer


def test_distinct_choice_rules_take_each_allowed_ordered_choice_and_nothing_else(compiler):
    items = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo"]
    shared = grounded._distinct_choice_rules("pick", items, sep=", ")
    for exclude in (frozenset(), frozenset({1}), frozenset({0, 3}), frozenset({5}), frozenset({2, 4})):
        rules = shared + (grounded._distinct_choice_rules("pickx", items, sep=", ", exclude=exclude, shared="pick")
                          if exclude else [])
        grammar = "root ::= " + ("pickx" if exclude else "pick") + "\n" + "\n".join(rules) + "\n"
        for choice in itertools.permutations(range(len(items)), 3):
            allowed = list(choice) == sorted(choice) and not set(choice) & exclude
            assert accepts(compiler, grammar, ", ".join(items[i] for i in choice)) == allowed, (exclude, choice)


def test_wrong_option_lists_are_distinct_by_kind_and_need_one_more_than_three():
    lists = wrong_option_lists(["1823", "Tobias Quill", "the River Senn", "River Senn", "Ines Kell", "Ada Pell", "Bo Vey"])
    assert lists == {"name": ["Tobias Quill", "the River Senn", "Ines Kell", "Ada Pell", "Bo Vey"],
                     "any": ["1823", "Tobias Quill", "the River Senn", "Ines Kell", "Ada Pell", "Bo Vey"]}
    assert wrong_option_lists(["1823", "Ada Pell"])["any"] == ["1823", "Ada Pell"] * 3  # too few: repeats allowed


def test_the_mc_and_docmath_grammars(compiler):
    mc = ("Evidence: In 1823 the engineer Tobias Quill built the first mill on the River Senn.\n"
          "Question: Who built the first mill?\nAnswer: Tobias Quill\nWrong: Aldous Varrow\nWrong: Elspeth Varrow\nWrong: Ines Kell")
    grammar = questioner_grammar("doc_mc", [MILL])
    assert accepts(compiler, grammar, mc)
    assert not accepts(compiler, grammar, mc.replace("Wrong: Elspeth Varrow", "Wrong: Ada Pell"))  # not in the documents
    math = "Evidence: Revenue was $70.0 million, up 8.5% from $64.5 million.\nQuestion: By how much did revenue grow?\nAnswer: 5.5"
    assert accepts(compiler, questioner_grammar("docmath_qa", [REPORT]), math)
    assert questioner_grammar("docmath_qa", ["No numbers are stated in this short text here."]) is None
    assert accepts(compiler, verifier_grammar(), "YES") and not accepts(compiler, verifier_grammar(), "MAYBE")


@pytest.mark.parametrize("span, kind", [("1838", "year"), ("1,250", "number"), ("$9.8 million", "number"),
                                        ("Tobias Quill", "name"), ("300", "number"), ("spring of 1794", "date"),
                                        ("4 May 2041", "date")])
def test_span_kinds(span, kind):
    assert span_kind(span) == kind


@pytest.mark.parametrize("before, kind", [("The data-loss incident of issue ", "number"), ("Fixed in #", "number"),
                                          ("She lived in room ", "number"), ("No. ", "number"),
                                          ("The mill opened in ", "year"), ("By ", "year"), ("", "year"),
                                          ("The tissue of ", "year")])  # "tissue" is not "issue"
def test_a_four_digit_number_after_a_label_word_is_a_number_not_a_year(before, kind):
    assert span_kind("1142", before) == kind


def test_a_labelled_number_is_asked_as_a_number_and_never_counted_as_years():
    sentence = "The bug was reported on 27 November 2040 as issue 1142 and fixed in 1.0 by 2041."
    assert cloze_question(sentence, "1142") == 'Which number completes "was reported on 27 November 2040 as issue ___ and fixed in 1.0 by 2041"?'
    assert cloze_question("The mill opened in 1142 beside the river Senn and closed later.", "1142").startswith("Which year")
    # Issue numbers are neither added nor taken for years; the years beside them still are.
    assert arithmetic_questions("Issue 1142 was filed in 2040 and issue 1187 was filed in 2041.") == [
        ('How many years apart are the two ___ in "Issue 1142 was filed in ___ and issue 1187 was filed in ___"?', "1")]


def test_a_cloze_question_blanks_the_span_and_keeps_its_context():
    q = cloze_question("In 1823 the engineer Tobias Quill built the first mill on the River Senn.", "Tobias Quill")
    assert q == 'Which name completes "In 1823 the engineer ___ built the first mill on the River Senn"?'
    assert cloze_question("Harrowmere received its charter in 1838 from the county court.", "1838") == (
        'Which year completes "Harrowmere received its charter in ___ from the county court"?')


def test_a_cloze_question_needs_the_span_as_whole_words_and_some_context():
    assert cloze_question("Varrowmere grew.", "Varrow") is None  # inside a word: no blank
    assert cloze_question("Harrowmere 1838.", "1838") is None  # one word of context
    assert cloze_question("The town stands on the river.", "Senn") is None


def test_a_long_sentence_keeps_a_window_that_fits_the_question_grammar():
    words = " ".join(f"word{i}" for i in range(30))
    q = cloze_question(f"{words} Tobias Quill {words}.", "Tobias Quill")
    assert q is not None and q.count("word") == 16
    assert len(q) - len("Which ") <= MAX_QUESTION_CHARS


def test_a_cloze_keeps_the_mark_after_the_blank_and_refuses_a_span_stated_twice():
    assert cloze_question("It was paid for by Aldous Varrow, the town's first mayor.", "Aldous Varrow") == (
        'Which name completes "It was paid for by ___, the town\'s first mayor"?')
    assert cloze_question("The mill opened in 1823 and closed in 1823 again.", "1823") is None


def test_the_cloze_grammar_writes_the_question_and_the_questioner_chooses_the_fact(compiler):
    grammar = questioner_grammar("doc_general_qa", [MILL], cloze=True)
    evidence = "Evidence: In 1823 the engineer Tobias Quill built the first mill on the River Senn.\n"
    good = evidence + ('Question: Which name completes "In 1823 the engineer ___ built the first mill on the River '
                       'Senn"?\nAnswer: Tobias Quill')
    assert accepts(compiler, grammar, good)
    assert accepts(compiler, grammar, evidence + 'Question: Which year completes "In ___ the engineer Tobias Quill '
                                                 'built the first mill"?\nAnswer: 1823')
    assert not accepts(compiler, grammar, good.replace("Answer: Tobias Quill", "Answer: 1823"))  # not that blank's span
    assert not accepts(compiler, grammar, evidence + "Question: Who built the first mill?\nAnswer: Tobias Quill")
    mc = good + "\nWrong: Aldous Varrow\nWrong: Elspeth Varrow\nWrong: Ines Kell"
    assert accepts(compiler, questioner_grammar("doc_mc", [MILL], cloze=True), mc)
    assert not accepts(compiler, questioner_grammar("doc_mc", [MILL], cloze=True), mc.replace("Elspeth", "Aldous"))


FERRY = "The ferry carried 12,400 passengers in 2030 and 9,300 in 2031."


def test_arithmetic_questions_blank_two_quantities_of_one_unit_and_compute_the_result():
    assert arithmetic_questions(FERRY) == [
        ('By how much do the two ___ differ in "The ferry carried ___ passengers in 2030 and ___ in 2031"?', "3100"),
        ('What do the two ___ add up to in "The ferry carried ___ passengers in 2030 and ___ in 2031"?', "21700"),
        ('How many years apart are the two ___ in "The ferry carried 12,400 passengers in ___ and 9,300 in ___"?', "1"),
    ]
    # The currency sign goes into the blank, the scale word stays; a percentage is not a $ amount.
    assert arithmetic_questions(REPORT.splitlines()[0])[:2] == [
        ('By how much do the two ___ differ in "Revenue was ___ million, up 8.5% from ___ million"?', "5.5"),
        ('What do the two ___ add up to in "Revenue was ___ million, up 8.5% from ___ million"?', "134.5"),
    ]
    # Percentages are compared, not added.
    assert [a for _, a in arithmetic_questions("The gross margin rose from 38.5% in spring to 41.4% in autumn.")] == ["2.9"]


def test_arithmetic_questions_leave_out_what_is_not_one_measure():
    assert arithmetic_questions("| Q1 FY2041 | 1,140 | 7.8 | 19.5 |") == []  # a period's row: different measures
    assert [a for _, a in arithmetic_questions("| Revenue | 9.8 | 11.6 | 14.0 |")] == ["1.8", "21.4", "2.4", "25.6"]
    assert arithmetic_questions("Headcount was 1,140 and the team spent 7.5 hours on each of them.") == []  # x150
    # No part of a date, no number glued to letters or a dash, no zero.
    assert arithmetic_questions("On 3 July 2041 the 2nd plant and plant Q3 opened with RFC-7 and 0 staff in all.") == []
    assert arithmetic_questions("The team of 40 grew by 40 people over the year.") == []  # one value twice
    # A result shown beside the blanks gives itself away: 10 + 5 is the total 15, 15 - 5 the 10.
    assert [a for _, a in arithmetic_questions("| Boats | 10 | 5 | 15 |")] == ["5", "20"]


@pytest.mark.parametrize("value, text", [(3100.0, "3100"), (5.5, "5.5"), (1 / 8, "0.125"), (2.0000000001, "2"),
                                         (1 / 3, "0.333")])
def test_computed_answers_are_written_as_the_docmath_rule_reads_them(value, text):
    assert format_number(value) == text


def test_the_docmath_cloze_grammar_offers_the_computed_records_and_falls_back_to_a_free_question(compiler):
    grammar = questioner_grammar("docmath_qa", [REPORT], cloze=True)
    good = ("Evidence: Revenue was $70.0 million, up 8.5% from $64.5 million.\nQuestion: By how much do the two ___ "
            'differ in "Revenue was ___ million, up 8.5% from ___ million"?\nAnswer: 5.5')
    assert accepts(compiler, grammar, good)
    assert not accepts(compiler, grammar, good.replace("Answer: 5.5", "Answer: 6.5"))  # computed, not chosen
    assert not accepts(compiler, grammar, good.split("Question: ")[0] + "Question: What was revenue growth?\nAnswer: 5.5")
    # Documents without two quantities of one unit: the free DocMath question, not a lost prompt.
    single = ["Revenue was $70.0 million in the quarter, its best quarter in five years of trading."]
    assert questioner_grammar("docmath_qa", single, cloze=True) == questioner_grammar("docmath_qa", single)


def test_the_grammar_offers_only_records_that_fit_the_token_limit():
    """A sentence or cloze whose record the questioner's token limit would cut is not offered
    (a character count stands in for the tokenizer here). The MILL records are 120 (Ines Kell),
    181-202 (the 1823 sentence) and 224-266 characters (the 1794 sentence) long."""
    limited = questioner_grammar("doc_general_qa", [MILL], cloze=True, fits=lambda text: len(text) <= 190)
    assert 'Answer: " "1823"' in limited and 'Answer: " "River Senn"' in limited
    assert 'Answer: " "Tobias Quill"' not in limited  # its cloze is the 202-character record
    assert "Elspeth" not in limited and 'Answer: " "Ines Kell"' in limited
    # a limit no record fits: all are offered (cut records are format errors, not question-less steps)
    assert questioner_grammar("doc_general_qa", [MILL], fits=lambda text: False) == questioner_grammar(
        "doc_general_qa", [MILL])
    free = questioner_grammar("doc_general_qa", [MILL], fits=lambda text: len(text) <= 150)
    assert "Tobias Quill built" in free and "Elspeth" not in free


def _offered(make, numeric_only: bool = False):
    """(documents, evidence, question, answer) for each cloze `make` offers over the sample corpus,
    taken two documents at a time."""
    corpus = [json.loads(line) for line in (REPO / "samples" / "corpus" / "sample.jsonl").read_text().splitlines()]
    corpus = [doc for doc in corpus if doc["numeric"] or not numeric_only]
    for start in range(0, len(corpus), 2):
        docs = corpus[start:start + 2]
        for evidence in evidence_candidates(docs):
            for question, answer in make(evidence, docs):
                yield docs, evidence, question, answer


def test_every_offered_cloze_passes_the_question_quality_rule():
    offered = list(_offered(clozes))
    for docs, evidence, question, answer in offered:
        assert answer in evidence.sentence and "___" in question and answer not in question
        assert question_quality("doc_general_qa", question, answer, None, docs).ok, (question, answer)
    assert len(offered) >= 100


def test_every_offered_arithmetic_cloze_is_computed_from_its_sentence():
    offered = list(_offered(arithmetic_clozes, numeric_only=True))
    for docs, _evidence, question, answer in offered:
        window = question.split('"')[1]
        assert question.count("___") == 3 and float(answer) not in {parse_number(n) for n in numbers_stated(window)}
        assert question_quality("docmath_qa", question, answer, None, docs).ok, (question, answer)
    assert len(offered) >= 50


def test_a_labelled_record_is_read_and_mc_letters_are_drawn_from_the_record():
    record = read_labelled_record("Evidence: x y\nQuestion: Who?\nAnswer: Ada\nWrong: Bo\nWrong: Cy\nWrong: Di")
    assert record == {"evidence": "x y", "question": "Who?", "answer": "Ada", "wrong": ["Bo", "Cy", "Di"]}
    assert read_labelled_record("Question: Who?") is None
    options, letter = mc_options("Who?", "Ada", ["Bo", "Cy", "Di"])
    assert options[letter] == "Ada" and sorted(options.values()) == ["Ada", "Bo", "Cy", "Di"]
    assert mc_options("Who?", "Ada", ["Bo", "Cy", "Di"]) == (options, letter)  # the same record, the same letters
    letters = Counter(mc_options(f"Question {i}?", "Ada", ["Bo", "Cy", "Di"])[1] for i in range(400))
    assert min(letters.values()) > 70  # spread over A-D
