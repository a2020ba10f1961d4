"""Candidate answer spans of a document set: the names, numbers and dates its text states.

The small-model preset grounds the questioner's reference answers by construction: its JSON grammar
lets a QA answer (or an MC option) be only one of these spans, so the reference is always found in
the documents and the model's effort goes into asking the question that the span answers. Found by
rule, no tagger:

- names: runs of capitalised words, joined by "of", "the", "de", "and" or "&" inside the run
  ("Elspeth Varrow", "River Senn", "Bank of Wexholt"); a sentence's first word counts only as part
  of a longer run ("The Quill Mill" -> "Quill Mill"); month names alone are not names;
- dates: "12 March 2036", "March 2036", "spring of 1794";
- numbers, and with the unit or plural noun that follows them: "1794", "14 families",
  "$70.0 million", "8.5%", "1,250 fleeces".

    candidate_spans(["In 1823 the engineer Tobias Quill built ..."])
    -> ["1823", "Tobias Quill", ...]
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

MAX_SPAN_CHARS = 60
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(]?[A-Z0-9])|\n+")
_ABBREVIATIONS = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|St|Mt|No|Co|Ltd|Inc|vs|etc|e\.g|i\.e)\.$")

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
SEASONS = "spring|summer|autumn|fall|winter"
_DATE = re.compile(
    rf"\b(?:\d{{1,2}} (?:{MONTHS}) \d{{4}}|(?:{MONTHS}) \d{{1,2}}, \d{{4}}|(?:{MONTHS}) \d{{4}}|"
    rf"(?:early |late )?(?:{SEASONS}) of \d{{4}})\b"
)
# A number (currency, thousands separators, decimals, %) and up to two following lower-case words
# that name what is counted ("14 families", "3.2 million euros"), or a unit-like word.
_NUMBER = re.compile(
    r"(?<![\w.])(?:[$€£]\s?)?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|(?<![\w.])(?:[$€£]\s?)?\d+(?:\.\d+)?%?"
)
# What follows a number when it names a quantity: a scale or unit word, or a plural noun.
_UNITS = "million|billion|thousand|per cent|percent|metres|meters|km|kilometres|miles|kg|tonnes|hectares|litres"
_NOT_COUNTED = {"was", "has", "is", "its", "his", "this", "thus", "as", "us", "yes", "does", "was", "less", "across"}
_COUNTED = re.compile(rf"[ \t]+({_UNITS}|[a-z]{{2,}}s)\b(?:[ \t]+([a-z]{{2,}}s)\b)?")
_CAP_WORD = r"(?:[A-Z][\w'’-]*[A-Za-z0-9]|[A-Z])"
_CONNECTORS = ("of", "the", "de", "da", "del", "von", "van", "du")
# Words of one name are on one line, joined by spaces and the connectors ("Bank of the North").
_NAME = re.compile(rf"{_CAP_WORD}(?:(?:[ \t]+(?:{'|'.join(_CONNECTORS)}))*[ \t]+{_CAP_WORD})*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;|]\s+|\n\s*|[\"“(|]\s*)$")
_NOT_NAMES = {
    "The", "A", "An", "In", "On", "At", "By", "For", "From", "To", "Of", "And", "But", "Or", "It", "Its",
    "He", "She", "They", "We", "I", "His", "Her", "Their", "This", "That", "These", "Those", "There",
    "When", "Where", "While", "After", "Before", "With", "Within", "As", "If", "Each", "All", "Some",
    "No", "Not", "One", "Two", "Three", "Both", "Every", "Most", "Many", "Until", "Since", "During",
    *MONTHS.split("|"),
}

_YEAR = re.compile(r"^(1[0-9]|20)[0-9]{2}$")
# A number right after one of these words labels a thing ("issue 1142", "room 1204", "No. 1850"):
# it is no year, and no quantity to add or subtract.
_LABEL_BEFORE = re.compile(
    r"(?:\b(?:issue|issues|ticket|case|bug|number|no\.|nr\.|item|order|invoice|page|pages|room|flat|"
    r"suite|route|bus|flight|train|platform|gate|pier|berth|lot|unit|model|version|serial|code|batch|"
    r"rfc|pr|pull request)|#)\s*$",
    re.IGNORECASE,
)
DIGIT = re.compile(r"[0-9]")
_DATE_WORD = re.compile(rf"\b(?:{MONTHS}|{SEASONS})\b", re.IGNORECASE)


def _text_of(doc: str | Mapping[str, object]) -> str:
    if isinstance(doc, Mapping):
        return f"{doc.get('title') or ''}\n{doc.get('text') or ''}"
    return str(doc)


def _names(text: str) -> Iterable[tuple[int, str]]:
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        at_start = bool(_SENTENCE_START.search(text[: m.start()]))
        # Drop leading function words ("The Quill Mill" -> "Quill Mill"); a lone sentence-initial
        # word is an ordinary word written with a capital, not a name.
        while words and (words[0] in _NOT_NAMES or words[0] in _CONNECTORS):
            words = words[1:]
            at_start = False
        if words and words[-1].endswith(("'s", "’s")):
            words[-1] = words[-1][:-2]  # "Tessellate's" -> "Tessellate"
        while words and words[-1] in _CONNECTORS:
            words = words[:-1]
        if not words or (at_start and len(words) == 1):
            continue
        yield m.start(), " ".join(words)


def _numbers(text: str) -> Iterable[tuple[int, str]]:
    for m in _NUMBER.finditer(text):
        number = m.group(0)
        yield m.start(), number
        after = _COUNTED.match(text, m.end())
        if after and after.group(1) not in _NOT_COUNTED:
            counted = after.group(1)
            if after.group(2) and counted in ("million", "billion", "thousand"):
                counted += " " + after.group(2)  # "3.2 million euros"
            yield m.start(), f"{number} {counted}"


def candidate_spans(documents: Sequence[str | Mapping[str, object]], limit: int = 48) -> list[str]:
    """Distinct answer spans of `documents`, in order of first appearance, at most `limit`: dates
    first, then names and numbers as they come (a grammar over many spans compiles slower)."""
    seen: dict[str, None] = {}
    texts = [_text_of(d) for d in documents]

    def add(span: str) -> None:
        span = " ".join(span.split()).strip(" ,.;:")
        if 1 < len(span) <= MAX_SPAN_CHARS and '"' not in span and "\\" not in span:
            seen.setdefault(span, None)

    for text in texts:
        for m in _DATE.finditer(text):
            add(m.group(0))
    for text in texts:
        for _, span in sorted([*_names(text), *_numbers(text)], key=lambda x: x[0]):
            add(span)
    return list(seen)[:limit]


def numbers_stated(text: str) -> list[str]:
    """The numbers written in `text` ("1794", "$70.0", "8.5%", "1,250"), in order."""
    return [m.group(0) for m in _NUMBER.finditer(text)]


def split_sentences(text: str) -> list[str]:
    """Sentences and table lines of `text`, whitespace folded. A break after "Dr." and the like
    is not a sentence end."""
    pieces = _SENTENCE_END.split(text)
    out: list[str] = []
    for piece in pieces:
        piece = " ".join(piece.split())
        if not piece:
            continue
        if out and _ABBREVIATIONS.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def is_label(before: str) -> bool:
    """Whether a number preceded by the text `before` labels a thing (issue 1142, room 12)."""
    return bool(_LABEL_BEFORE.search(before[-40:]))


def span_kind(span: str, before: str = "") -> str:
    """What a span is, as a cloze asks for it: "year" (1838), "date" (May 2041, spring of 1794),
    "number" (1,250, $9.8 million; "1142" in "issue 1142") or "name". `before` is the text that
    precedes the span where it stands, when known."""
    if _YEAR.match(span):
        return "number" if is_label(before) else "year"
    if _DATE_WORD.search(span) and DIGIT.search(span):
        return "date"
    return "number" if DIGIT.search(span) else "name"
