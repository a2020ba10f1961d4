"""Question quality: is a questioner record a real question whose reference is found in, or derived
from, the documents the questioner saw?

A small model under a JSON grammar always writes a parseable record, but the record can still be
noise: a fragment ("Does the answer to the"), a restated sentence, the schema's own words ("An
optional JSON object"), a loop ("The answer to the answer to"), or a reference answer that the
documents never mention. `question_quality` finds these by rule, one reason per record:

    question_quality("doc_general_qa", "Who built the first mill?", "Tobias Quill", None, docs)
    -> Quality(ok=True, reason="")

The rule is a pure function of the record and the documents, so it is the same in every process and
can be checked on hand-made cases. The step reports the share of well-formed records
(`questioner.question_quality`) and, when `selfplay.question_quality_filter` is on, scores an
ill-formed record like a format error.

Reasons (the part before ":" is a stable code, the rest a detail for people):
    not_a_question       no interrogative opening, or no final "?"
    fragment / too_long  fewer than MIN_WORDS / more than MAX_WORDS words
    meta_text            the prompt's or schema's vocabulary ("json", "answer", "option", ...)
    repetitive           a repeated 3-word run or too few distinct words
    copied_sentence      the question is a sentence of the documents with a "?" added
    off_topic            fewer than half of the question's content words occur in the documents
                         (a question copied from the prompt's example, or invented)
    answer_in_question   the question gives its own answer away
    wrong_answer_type    "When" answered by a name, "Who" by a number, "How many" by a word, ...
    answer_out_of_place  no sentence stating the answer shares a content word with the question
    answer_not_grounded  QA / MC: a content word of the (right) answer is not in the documents
    options_not_distinct MC: two options say the same thing
    number_not_derived   DocMath: the answer is neither a number of the documents nor one
                         operation on two of them
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from spell.answers import normalize_answer, numbers_match, parse_number
from spell.spans import MONTHS, SEASONS, split_sentences

MIN_WORDS = 4
MAX_WORDS = 60
# DocMath arithmetic is searched over at most this many distinct numbers of the documents (the
# pairs grow quadratically; a questioner's few report pages hold well under this).
MAX_NUMBERS = 200

_INTERROGATIVES = {
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
}
_AUXILIARIES = {
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "has", "have", "had",
    "will", "would", "should", "shall", "may", "might", "must",
}
# Words of our prompts and schemas that a real question about the documents never needs.
_META = re.compile(
    r"\b(json|schema|questions?|answers?|options?|reasoning|insert|placeholder|example|"
    r"documents? \d+)\b",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or but not no nor as is are was were be been
    being it its this that these those there their they them he she his her him we our you your i
    my me do does did done has have had having which who whom whose what when where why how than
    then so such very into onto over under about after before during between through per each
    every all any both either neither some most more less many much few several one""".split()
)
# Words a question uses to ask, not to say what it is about ("What is the name of the person...").
_ASKING = frozenset(
    """name names called person people year years date day month time number amount total value
    percentage percent per cent share first last kind type happened happen according mentioned
    stated said text documents report reports""".split()
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")


@dataclass(frozen=True)
class Quality:
    ok: bool
    reason: str = ""

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


GOOD = Quality(True)


def _bad(code: str, detail: str = "") -> Quality:
    return Quality(False, f"{code}: {detail}" if detail else code)


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits; apostrophes kept inside words)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in _STOPWORDS]


def _document_text(documents: Sequence[Any]) -> str:
    parts = []
    for doc in documents:
        if isinstance(doc, Mapping):
            parts.append(f"{doc.get('title') or ''}\n{doc.get('text') or ''}")
        else:
            parts.append(str(doc))
    return "\n\n".join(parts)


def numbers_in(text: str) -> list[float]:
    """Every number written in `text` ("1,250", "8.5", "-3"), as floats, in order, distinct."""
    seen: dict[float, None] = {}
    for m in _NUMBER_IN_TEXT.finditer(text):
        raw = m.group(0).replace(",", "").replace("−", "-")
        try:
            seen.setdefault(float(raw), None)
        except ValueError:
            continue
    return list(seen)


# ------------------------------------------------------------------------------ the question


def check_question(question: str, documents_text: str = "") -> Quality:
    """The question on its own: an interrogative sentence of sensible length, not the prompt's
    words, not a loop, not a sentence of the documents with a question mark added."""
    q = " ".join(question.split())
    toks = words(q)
    if len(toks) < MIN_WORDS:
        return _bad("fragment", f"{len(toks)} words")
    if len(toks) > MAX_WORDS:
        return _bad("too_long", f"{len(toks)} words")
    if not q.endswith("?"):
        return _bad("not_a_question", "does not end with '?'")
    # "Who ...", "In which year ...", "According to the report, what ...", or "Is / Did ...".
    if not (toks[0] in _AUXILIARIES or any(t in _INTERROGATIVES for t in toks[:6])):
        return _bad("not_a_question", f"opens with {' '.join(toks[:3])!r}")
    meta = _META.search(q)
    if meta:
        return _bad("meta_text", repr(meta.group(0)))
    trigrams = list(zip(toks, toks[1:], toks[2:]))
    if len(trigrams) != len(set(trigrams)) or len(set(toks)) < 0.5 * len(toks):
        return _bad("repetitive")
    if documents_text:
        body = normalize_answer(q.rstrip("?"))
        if len(body.split()) >= 6 and body in normalize_answer(documents_text):
            return _bad("copied_sentence")
    return GOOD


# ------------------------------------------------------------------------------ the answer


_YES_NO = frozenset({"yes", "no"})


def _grounded(answer: str, doc_words: set[str], *, yes_no_question: bool = False) -> Quality:
    needed = [w for w in content_words(answer) if w not in _YES_NO]
    if not needed:
        if yes_no_question and set(words(answer)) & _YES_NO:
            return GOOD  # "Is it true that ...?" -> "yes": nothing to find in the documents
        return _bad("answer_not_grounded", "the answer has no content word")
    missing = [w for w in needed if w not in doc_words]
    if missing:
        return _bad("answer_not_grounded", f"not in the documents: {', '.join(missing[:3])}")
    return GOOD


def topic_words(question: str) -> list[str]:
    """The question's content words that name what it is about."""
    return [w for w in content_words(question) if w not in _ASKING and w not in _YES_NO]


def _on_topic(question: str, doc_words: set[str]) -> Quality:
    topic = topic_words(question)
    found = [w for w in topic if w in doc_words]
    if not topic or len(found) * 2 < len(topic):
        missing = [w for w in topic if w not in doc_words]
        return _bad("off_topic", f"not in the documents: {', '.join(missing[:4]) or 'no topic word'}")
    return GOOD


_YEARISH = re.compile(r"\b(1[0-9]{3}|20[0-9]{2}|2[1-9][0-9]{2})\b")
_TIME_WORDS = re.compile(rf"\b(?:{MONTHS}|{SEASONS}|century|decade)\b", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")


def expected_answer_type(question: str) -> str | None:
    """What the question asks for: "time", "number", "name" (a person, place or thing named), or
    None when its opening does not say ("What ...", "Which ...")."""
    q = " ".join(words(question)[:6])
    if re.search(r"\b(when|what year|which year|what date|which date|what month|which month|what century)\b", q):
        return "time"
    if re.search(r"\b(how many|how much|what percentage|what percent|by how much|what share|how long|how old)\b", q):
        return "number"
    if re.search(r"\b(who|whom|whose|where)\b", q):
        return "name"
    return None


def _type_fits(expected: str | None, answer: str) -> bool:
    if expected == "time":
        return bool(_YEARISH.search(answer) or _TIME_WORDS.search(answer))
    if expected == "number":
        return bool(_HAS_DIGIT.search(answer)) or bool(re.search(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|"
                                                             r"eleven|twelve|twenty|hundred|thousand|half|dozen)\b", answer, re.I))
    if expected == "name":
        # A person or place is written with a capital and is not only a date or a number.
        return any(c.isupper() for c in answer) and not (_HAS_DIGIT.search(answer) and not re.search(r"[A-Za-z]{3}", answer))
    return True


def _in_place(question: str, answer: str, documents_text: str) -> bool:
    """Some sentence of the documents states the answer and shares a topic word with the question
    (the answer is about what the question asks, not a span from elsewhere)."""
    topic = set(topic_words(question))
    ans = normalize_answer(answer)
    for sentence in split_sentences(documents_text):
        if ans and f" {ans} " in f" {normalize_answer(sentence)} " and topic & set(words(sentence)):
            return True
    return False


def _answer_checks(question: str, answer: str, documents_text: str, doc_words: set[str]) -> Quality:
    """The (right) answer: not given away, of the asked type, stated in the documents, and stated
    where the question's topic is."""
    if _gives_away(question, answer):
        return _bad("answer_in_question")
    yes_no = words(question)[0] in _AUXILIARIES
    grounded = _grounded(answer, doc_words, yes_no_question=yes_no)
    if not grounded.ok or (yes_no and set(words(answer)) & _YES_NO):
        return grounded  # a yes / no answer has no type or place to check
    expected = expected_answer_type(question)
    if not _type_fits(expected, answer):
        return _bad("wrong_answer_type", f"asks for a {expected}, answered {answer[:40]!r}")
    if not _in_place(question, answer, documents_text):
        return _bad("answer_out_of_place")
    return GOOD


def _gives_away(question: str, answer: str) -> bool:
    ans = normalize_answer(answer)
    return bool(ans) and f" {ans} " in f" {normalize_answer(question)} "


def derived_numbers(values: Iterable[float]) -> Iterable[float]:
    """Each number, and one operation on two of them: a+b, a-b, a*b, a/b, and the percentage
    change and share (b-a)/a*100, a/b*100 (DocMath questions ask for growth rates and shares)."""
    vals = list(values)[:MAX_NUMBERS]
    yield from vals
    for a, b in itertools.permutations(vals, 2):
        yield a + b
        yield a - b
        yield a * b
        if b != 0:
            yield a / b
            yield a / b * 100.0
        if a != 0:
            yield (b - a) / a * 100.0


def _derivable(value: float, documents_text: str) -> bool:
    return any(numbers_match(value, x) for x in derived_numbers(numbers_in(documents_text)) if x != 0)


# ------------------------------------------------------------------------------ the record


def question_quality(
    task: str,
    question: str,
    answer: Any,
    options: Mapping[str, str] | None,
    documents: Sequence[Any],
) -> Quality:
    """Whether a parsed questioner record is a well-formed question grounded in `documents` (the
    ones the questioner saw: strings or mappings with "title" / "text")."""
    text = _document_text(documents)
    verdict = check_question(question, text)
    if not verdict.ok:
        return verdict
    doc_words = set(words(text))
    verdict = _on_topic(question, doc_words)
    if not verdict.ok:
        return verdict
    if task == "doc_general_qa":
        return _answer_checks(question, str(answer), text, doc_words)
    if task == "doc_mc":
        opts = dict(options or {})
        if len({normalize_answer(v) for v in opts.values()}) < len(opts):
            return _bad("options_not_distinct")
        return _answer_checks(question, opts.get(str(answer), ""), text, doc_words)
    if task == "docmath_qa":
        value = answer if isinstance(answer, (int, float)) else parse_number(str(answer))
        if value is None or not _derivable(float(value), text):
            return _bad("number_not_derived", f"{answer!r}")
        return GOOD
    raise ValueError(f"unknown task {task!r}")
