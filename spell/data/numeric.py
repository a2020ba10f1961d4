"""Which documents and clusters are numeric (and so also feed `docmath_qa`).

The heuristic, in words: a financial report or a lab table is full of numbers and of lines that
are rows of a table; narrative prose, even prose with dates, is not. So a document is numeric when
either
  * the share of its word tokens that are numbers ("1,204", "-3.5%", "$12.0m", "(42)") reaches
    `min_number_share`, or
  * the share of its non-empty lines that look like table rows reaches `min_table_line_share`,
    where a table row is a line with two or more `|` or tab separators, or a short line that is
    mostly numbers (at least `table_row_min_numbers` numbers making up half of its tokens).
A cluster is numeric when the uploaded file says so (an explicit `numeric` flag wins, true or
false), else when the share of its numeric documents reaches `min_numeric_doc_share`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

# Optional currency/sign/parenthesis, digits with separators, optional decimals, optional
# percent or magnitude suffix (k, m, bn, x), optional closing parenthesis / punctuation.
_NUMBER_TOKEN = re.compile(
    r"^[(\[]?[-+−]?[$€£¥]?[-+−]?\d[\d,]*(\.\d+)?(%|x|k|m|bn|mn|pp|bp)?[)\]]?[.,;:]?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NumericThresholds:
    min_number_share: float = 0.15
    min_table_line_share: float = 0.2
    table_row_min_numbers: int = 2
    min_numeric_doc_share: float = 0.5


@dataclass(frozen=True)
class NumericProfile:
    tokens: int
    number_tokens: int
    lines: int
    table_lines: int
    is_numeric: bool

    @property
    def number_share(self) -> float:
        return self.number_tokens / self.tokens if self.tokens else 0.0

    @property
    def table_line_share(self) -> float:
        return self.table_lines / self.lines if self.lines else 0.0


def is_number_token(token: str) -> bool:
    return bool(_NUMBER_TOKEN.match(token))


def _is_table_line(line: str, tokens: list[str], numbers: int, thresholds: NumericThresholds) -> bool:
    if line.count("|") >= 2 or line.count("\t") >= 2:
        return True
    return numbers >= thresholds.table_row_min_numbers and numbers * 2 >= len(tokens)


def profile_text(text: str, thresholds: NumericThresholds = NumericThresholds()) -> NumericProfile:
    total_tokens = total_numbers = lines = table_lines = 0
    for line in text.splitlines():
        tokens = line.split()
        if not tokens:
            continue
        numbers = sum(1 for token in tokens if is_number_token(token))
        lines += 1
        total_tokens += len(tokens)
        total_numbers += numbers
        table_lines += _is_table_line(line, tokens, numbers, thresholds)
    number_share = total_numbers / total_tokens if total_tokens else 0.0
    table_share = table_lines / lines if lines else 0.0
    numeric = (number_share >= thresholds.min_number_share
               or table_share >= thresholds.min_table_line_share)
    return NumericProfile(total_tokens, total_numbers, lines, table_lines, numeric)


def is_numeric_document(text: str, thresholds: NumericThresholds = NumericThresholds()) -> bool:
    return profile_text(text, thresholds).is_numeric


def given_cluster_flag(flags: Sequence[bool | None]) -> bool | None:
    """The file's own say about a cluster: True if any document is marked numeric (the corpus
    contract), False if every flagged document says false, None if nobody said anything."""
    stated = [flag for flag in flags if flag is not None]
    if not stated:
        return None
    return any(stated)


def is_numeric_cluster(document_is_numeric: Sequence[bool], given: bool | None = None,
                       thresholds: NumericThresholds = NumericThresholds()) -> bool:
    if given is not None:
        return given
    if not document_is_numeric:
        return False
    share = sum(document_is_numeric) / len(document_is_numeric)
    return share >= thresholds.min_numeric_doc_share
