import pytest

from spell.data.normalize import NormalizeOptions, length_problem, normalize_text, normalize_title


def test_it_applies_nfkc():
    # ligature, full-width digits, non-breaking space
    assert normalize_text("\ufb01nal \uff11\uff12\u00a0items") == "final 12 items"


def test_it_strips_control_and_format_characters():
    assert normalize_text("zero\u200bwidth soft\u00adhyphen nul\x00 bell\x07 end") == "zerowidth softhyphen nul bell end"


def test_it_collapses_spaces_but_keeps_lines_and_paragraph_breaks():
    text = "  First   line\t\there \r\nsecond line\r\n\r\n\r\n\r\nNext   paragraph\u2029Last  "
    assert normalize_text(text) == "First line here\nsecond line\n\nNext paragraph\nLast"


def test_it_keeps_table_rows_on_their_own_lines():
    table = "| Segment | Q1 |\n| Marine  | 18.4 |"
    assert normalize_text(table).splitlines() == ["| Segment | Q1 |", "| Marine | 18.4 |"]


@pytest.mark.parametrize("text", ["A \u00a0 b\n\n\n\nc\u200b d", "e\u200b\u0301 cafe\u00ad\u0301"])
def test_it_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_titles_become_one_clean_line():
    assert normalize_title("  The\nGreat   Flood ") == "The Great Flood"
    assert normalize_title(None) is None
    assert normalize_title(" \u200b ") is None
    assert len(normalize_title("x" * 500)) == 200


def test_length_bounds_name_the_problem():
    options = NormalizeOptions(min_chars=10, max_chars=20)
    assert length_problem("short", options) == "shorter than 10 characters (5)"
    assert length_problem("just right here", options) is None
    assert length_problem("x" * 25, options) == "longer than 20 characters (25)"


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalising_any_text_is_idempotent_and_leaves_no_control_runs(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert "  " not in once and "\n\n\n" not in once and "\t" not in once
    assert once == once.strip()
