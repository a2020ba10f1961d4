import json
from pathlib import Path

import pytest

from spell.data.numeric import (NumericThresholds, given_cluster_flag, is_number_token, is_numeric_cluster,
                                is_numeric_document, profile_text)

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "corpus" / "sample.jsonl"

PROSE = ("In 1887 the river rose four metres and eleven people died. The mayor organised relief, "
         "and a stone bridge opened in 1891 on the anniversary of the flood. ") * 4
TABLE = ("Revenue by segment, in millions.\n| Segment | Q1 | Q2 |\n| Industrial | 42.0 | 45.5 |\n"
         "| Marine | 18.4 | 21.2 |\n| Total | 70.0 | 76.8 |\n")
NUMBER_HEAVY_PROSE = ("Revenue was $70.0m, up 8.5% from $64.5m; margin 38.2% vs 36.9%, "
                      "net income 5.1 and backlog 96.3. ") * 3


@pytest.mark.parametrize("token", ["1,204", "-3.5%", "$12.0m", "(42)", "2041", "70.0,", "1.5x", "€9bn"])
def test_it_counts_number_tokens(token):
    assert is_number_token(token)


@pytest.mark.parametrize("token", ["Q3", "MK-4", "abc", "-", "%", "Osmir-3"])
def test_it_does_not_count_words_as_numbers(token):
    assert not is_number_token(token)


def test_prose_with_dates_is_not_numeric():
    profile = profile_text(PROSE)
    assert profile.number_tokens == 8 and profile.table_lines == 0
    assert not profile.is_numeric


def test_a_table_makes_a_document_numeric():
    profile = profile_text(TABLE)
    assert profile.table_lines == 4 and profile.lines == 5
    assert profile.is_numeric


def test_number_heavy_prose_is_numeric_without_a_table():
    profile = profile_text(NUMBER_HEAVY_PROSE)
    assert profile.table_lines == 0
    assert profile.number_share >= 0.15
    assert profile.is_numeric


def test_thresholds_are_parameters():
    strict = NumericThresholds(min_number_share=0.9, min_table_line_share=0.9)
    assert not is_numeric_document(TABLE, strict)
    assert is_numeric_document(PROSE, NumericThresholds(min_number_share=0.01))


def test_cluster_flag_from_the_file_wins():
    assert given_cluster_flag([None, True, False]) is True
    assert given_cluster_flag([False, None]) is False
    assert given_cluster_flag([None, None]) is None
    assert is_numeric_cluster([False, False], given=True)
    assert not is_numeric_cluster([True, True], given=False)


def test_cluster_is_numeric_by_share_of_numeric_documents():
    assert is_numeric_cluster([True, True, False, False])  # 0.5 reaches the default 0.5
    assert not is_numeric_cluster([True, False, False])
    assert not is_numeric_cluster([])
    assert is_numeric_cluster([True, False, False], thresholds=NumericThresholds(min_numeric_doc_share=0.3))


def test_on_the_sample_corpus_only_the_reports_are_numeric():
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    detected = {r["id"]: is_numeric_document(r["text"]) for r in records}
    assert {i for i, numeric in detected.items() if numeric} == {r["id"] for r in records if r["cluster"] == "corvane"}
