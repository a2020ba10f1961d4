"""Grounded role outputs for small models: the questioner quotes a sentence of its documents, asks
a question about it, and takes the reference answer from that sentence; grammars make it so.

SmolLM2-135M writes a parseable JSON record under a schema, but what it writes there is noise
(fragments, schema words, answers the documents never mention). The small-model prompt style asks
for three labelled lines instead, and a grammar built from the shown documents decides what each
line may hold:

    Evidence: <one sentence of the documents, copied>
    Question: <What / Which / Who / ... ?>
    Answer: <a name, date or number that the evidence sentence states>

so every reference answer is found in the documents by construction, and the question is written
right after the sentence it is about (turning a sentence into a question is within a small model's
reach; inventing one from 1,500 tokens of text is not). Multiple choice adds three `Wrong:` lines,
three different spans of the documents, of the answer's kind where the documents offer enough (a
year for a year, a name for a name; without it SmolLM2 wrote the same wrong option twice); the four
options are then put in an order drawn from the record itself (`mc_options`), so the model never
has to track letters. DocMath's answer is a number (checked for being derived from the documents by
spell/quality.py).

With cloze questions (structured.cloze_questions) the grammar writes the QA / MC question as well:
`Which name|year|date|number completes "<words> ___ <words>"?`, the blank being the answer span, so the
model's part is to choose the fact (the sentence, the span) and, for MC, the wrong options. A 135M
model that has been shown the form still writes "Which number completes this sentence?".

The grammars are xgrammar EBNF (the engines compile them; vLLM takes the same text). Everything
here is a pure function of the documents, so the same prompt gets the same grammar in every
process.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from spell.answers import normalize_answer, parse_number
from spell.quality import question_quality
from spell.spans import DIGIT, candidate_spans, is_label, numbers_stated, span_kind, split_sentences

# Question openings the grammar allows (each followed by at least 8 more characters and a "?").
QUESTION_OPENINGS = (
    "What", "Which", "Who", "Whom", "Whose", "When", "Where", "Why", "How many", "How much", "How long",
    "How old", "How", "In which", "In what", "On which", "At which", "From which", "By how much",
    "For how long", "To whom",
)
MIN_SENTENCE_WORDS = 5
MAX_SENTENCE_WORDS = 60
MAX_EVIDENCE = 48  # alternatives in one grammar (compile time grows with them)
MAX_QUESTION_CHARS = 160

CLOZE_CONTEXT_WORDS = 8  # words kept on each side of the blank (the question stays under MAX_QUESTION_CHARS)
MAX_CLOZES_PER_SENTENCE = 3  # spans of one evidence sentence offered as blanks (grammar size)


@dataclass(frozen=True)
class Evidence:
    sentence: str
    spans: tuple[str, ...]  # answer spans stated in the sentence
    numeric: bool  # the sentence states a number (DocMath evidence)


def _text_of(doc: str | Mapping[str, object]) -> str:
    if isinstance(doc, Mapping):
        return str(doc.get("text") or "")
    return str(doc)


def evidence_candidates(documents: Sequence[str | Mapping[str, object]], limit: int = MAX_EVIDENCE) -> list[Evidence]:
    """The sentences a questioner may quote: 5-60 words, stating at least one answer span, in
    document order, at most `limit` (spread over all documents when there are more)."""
    per_doc: list[list[Evidence]] = []
    for doc in documents:
        found = []
        for sentence in split_sentences(_text_of(doc)):
            n = len(sentence.split())
            if not (MIN_SENTENCE_WORDS <= n <= MAX_SENTENCE_WORDS):
                continue
            spans = tuple(s for s in candidate_spans([sentence], limit=12) if s in sentence)
            if spans:
                found.append(Evidence(sentence, spans, bool(numbers_stated(sentence))))
        per_doc.append(found)
    # Round-robin over the documents, so a long first document cannot crowd out the others.
    out: list[Evidence] = []
    for i in range(max((len(f) for f in per_doc), default=0)):
        for found in per_doc:
            if i < len(found) and len(out) < limit:
                out.append(found[i])
    order = {id(e): k for k, e in enumerate(x for f in per_doc for x in f)}
    return sorted(out, key=lambda e: order[id(e)])


# ------------------------------------------------------------------------------ cloze questions

BLANK = "___"


def blanked_window(sentence: str, blanks: Sequence[tuple[int, int]]) -> str | None:
    """`sentence` with each (start, end) character range as a blank, cut to CLOZE_CONTEXT_WORDS
    words before the first blank and after the last (a mark stays on its blank: "___'s", "___,");
    None when fewer than 3 words of context are left. Double quotes become single ones (the
    window is quoted)."""
    masked, at = [], 0
    for start, end in sorted(blanks):
        masked += [sentence[at:start], BLANK]
        at = end
    masked.append(sentence[at:])
    words = "".join(masked).rstrip(" .!;:").split()
    holes = [i for i, w in enumerate(words) if BLANK in w]
    # A mark on the last blank counts as the first word after it.
    after = CLOZE_CONTEXT_WORDS - bool(words[holes[-1]].split(BLANK)[-1])
    window = words[max(0, holes[0] - CLOZE_CONTEXT_WORDS): holes[-1] + 1 + after]
    if len(window) - len(holes) < 3:
        return None
    return " ".join(window).replace('"', "'")


def _fits_question(question: str) -> str | None:
    if len(question) - len("Which ") > MAX_QUESTION_CHARS or "\n" in question:
        return None
    return question


def cloze_question(sentence: str, span: str) -> str | None:
    """'Which <kind> completes "<words> ___ <words>"?' for the first place `span` stands in
    `sentence` (a window of words around it); None when the span is not a whole-word part of it."""
    at = re.search(rf"(?<![\w]){re.escape(span)}(?![\w])", sentence)
    if at is None:
        return None
    window = blanked_window(sentence, [at.span()])
    if window is None or span.lower() in window.lower():  # stated twice: the blank would not hide it
        return None
    return _fits_question(f'Which {span_kind(span, sentence[:at.start()])} completes "{window}"?')


def clozes(evidence: Evidence, documents: Sequence[str | Mapping[str, object]]) -> list[tuple[str, str]]:
    """(question, answer) for the first MAX_CLOZES_PER_SENTENCE spans of `evidence` whose cloze
    the question-quality rule accepts over `documents` (about 3% fail it on the sample corpus: a
    span whose sentence shares no other word with the window, a name in a "When ..." sentence)."""
    out = []
    for span in evidence.spans:
        question = cloze_question(evidence.sentence, span)
        if question is not None and question_quality("doc_general_qa", question, span, None, documents).ok:
            out.append((question, span))
        if len(out) == MAX_CLOZES_PER_SENTENCE:
            break
    return out


# DocMath clozes (structured.cloze_questions): two quantities of one sentence blanked, and one
# operation on them; the answer is computed here, so it is derived from the documents by
# construction, and the responder must find the sentence to know the numbers.
_SCALE_AFTER = re.compile(r"\s*(million|billion|thousand)\b", re.IGNORECASE)
_ARITHMETIC = (
    ("difference", "By how much do the two ___ differ in"),
    ("sum", "What do the two ___ add up to in"),
)
_YEARS_APART = "How many years apart are the two ___ in"


def _quantities(sentence: str) -> list[tuple[int, int, float, str]]:
    """(start, end, value, unit) of each number of `sentence` that is a quantity: not glued to a
    letter ("1st", "Q3", "RFC-7"), not a label ("issue 1142"), not part of a date span. The unit is
    "year" for a year, else its currency sign, "%" and scale word ("$ million"): only quantities of
    one unit are combined."""
    dated = [(m.start(), m.end()) for d in candidate_spans([sentence], limit=64) if span_kind(d) == "date"
             for m in re.finditer(re.escape(d), sentence)]
    out, at = [], 0
    for text in numbers_stated(sentence):
        start = sentence.index(text, at)
        end = at = start + len(text)
        glued = (start and (sentence[start - 1].isalpha() or sentence[start - 1] == "-")) or (
            end < len(sentence) and (sentence[end].isalpha() or sentence[end] == "-"))
        if glued or is_label(sentence[:start]) or any(a <= start < b for a, b in dated):
            continue
        value = parse_number(text)
        if value is None:
            continue
        scale = _SCALE_AFTER.match(sentence, end)
        unit = "year" if span_kind(text) == "year" else (
            (text[0] if text[0] in "$€£" else "") + ("%" if text.endswith("%") else "")
            + (" " + scale.group(1).lower() if scale else ""))
        out.append((start, end, value, unit))
    return out


def format_number(value: float) -> str:
    """A computed answer as the DocMath rule reads it: an integer without a point, else at most
    three decimals ("5.5", "0.125", "3100")."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.3f}".rstrip("0").rstrip(".")


MAX_RATIO = 10  # two quantities further apart than this are seldom one measure (a headcount, a $ amount)


def _comparable(v1: float, v2: float) -> bool:
    return v1 != v2 and v1 > 0 and v2 > 0 and max(v1, v2) <= MAX_RATIO * min(v1, v2)


def arithmetic_questions(sentence: str) -> list[tuple[str, str]]:
    """(question, answer) for each quantity and the next one of its unit, different and of one
    magnitude: their difference and sum (for years: how many years apart), the two blanked in a
    window of the sentence: 'By how much do the two ___ differ in "Revenue rose to $___ million
    from ..."?'. A table row labelled by a period ("| Q1 FY2041 | 1,140 | 7.8 |") holds different
    measures side by side and is left out; one labelled by a measure ("| Revenue | 9.8 | 11.6 |")
    is not."""
    if sentence.startswith("|") and DIGIT.search(sentence.strip("| ").split("|")[0]):
        return []
    by_unit: dict[str, list[tuple[int, int, float, str]]] = {}
    for quantity in _quantities(sentence):
        by_unit.setdefault(quantity[3], []).append(quantity)
    pairs = sorted(pair for found in by_unit.values() for pair in zip(found, found[1:]))
    out = []
    for (s1, e1, v1, u1), (s2, e2, v2, _) in pairs:
        if not _comparable(v1, v2):
            continue
        window = blanked_window(sentence, [(s1, e1), (s2, e2)])
        if window is None:
            continue
        if u1 == "year":
            asked = [(_YEARS_APART, abs(v2 - v1))]
        else:
            # Shares are compared, not added: a percentage gets only its difference (in points).
            asked = [(frame, abs(v2 - v1) if op == "difference" else v1 + v2) for op, frame in _ARITHMETIC
                     if op == "difference" or "%" not in u1]
        shown = {parse_number(n) for n in numbers_stated(window)}
        for frame, value in asked:
            question = _fits_question(f'{frame} "{window}"?')
            # A row's total column would give the sum away.
            if question is not None and parse_number(format_number(value)) not in shown:
                out.append((question, format_number(value)))
    return out


def arithmetic_clozes(evidence: Evidence, documents: Sequence[str | Mapping[str, object]]) -> list[tuple[str, str]]:
    """The first MAX_CLOZES_PER_SENTENCE arithmetic questions of `evidence` that the question-quality
    rule accepts over `documents` (as `clozes`, for DocMath)."""
    return [(q, a) for q, a in arithmetic_questions(evidence.sentence)
            if question_quality("docmath_qa", q, a, None, documents).ok][:MAX_CLOZES_PER_SENTENCE]


# ------------------------------------------------------------------------------ grammars


def _lit(text: str) -> str:
    """An EBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _alternatives(items: Sequence[str]) -> str:
    return " | ".join(_lit(x) for x in dict.fromkeys(items))


_QUESTION_RULES = (
    f"question ::= opening [^\\n?]{{8,{MAX_QUESTION_CHARS}}} \"?\"\n"
    f"opening ::= {_alternatives([o + ' ' for o in QUESTION_OPENINGS])}\n"
)
_NUMBER_RULE = 'number ::= "-"? [0-9] [0-9,]{0,14} ("." [0-9]{1,6})? "%"?\n'


WRONG_OPTIONS = 3


def wrong_option_lists(spans: Sequence[str]) -> dict[str, list[str]]:
    """The spans an MC record's wrong options are drawn from, by kind: "any" (all distinct spans)
    and each kind (span_kind) with at least one more span than the wrong options, so that three of
    them can differ from an answer of that kind. Distinct as the quality rule compares options
    (normalize_answer), in the spans' order. With fewer than three distinct spans, "any" repeats
    them: the grammar then allows a repeated option (a record the quality rule rejects) rather
    than no MC record at all."""
    distinct: dict[str, str] = {}
    for span in spans:
        distinct.setdefault(normalize_answer(span), span)
    by_kind: dict[str, list[str]] = {}
    for span in distinct.values():
        by_kind.setdefault(span_kind(span), []).append(span)
    out = {kind: found for kind, found in by_kind.items() if len(found) > WRONG_OPTIONS}
    out["any"] = list(distinct.values()) if len(distinct) >= WRONG_OPTIONS else list(distinct.values()) * WRONG_OPTIONS
    return out


def overlaps(option: str, answer: str) -> bool:
    """Whether `option` would say (part of) `answer`, as the MC rules compare them: one normalised
    text inside the other ("2041" beside "May 2041", "Elspeth" beside "Elspeth Varrow")."""
    a, b = normalize_answer(option), normalize_answer(answer)
    return a in b or b in a


def _distinct_choice_rules(
    name: str, items: Sequence[str], sep: str, n: int = WRONG_OPTIONS,
    exclude: frozenset[int] = frozenset(), shared: str | None = None,
) -> list[str]:
    """Rules for `name`: n of `items` joined by `sep`, each used once, in the items' order, none of
    the indices in `exclude`.

    `{name}_k_j` is "k items, the first at index j or later": item j then k-1 items after it, or
    k items from j+1 on. That is n x len(items) small rules, where listing every ordered choice
    would be len(items)^n alternatives. (The order is the documents', as the warm-up writes them.)
    `shared`: the same chain without exclusions (already in the grammar), whose rules past the last
    excluded index are the same and are referred to instead of repeated."""
    m = len(items)
    free = [0] * (m + 1)  # free[j]: the items at index j or later that may be chosen
    for j in range(m - 1, -1, -1):
        free[j] = free[j + 1] + (j not in exclude)
    if free[0] < n:
        raise ValueError(f"{name}: {n} distinct choices from {free[0]} items")
    last = max(exclude, default=-1)
    reuse = shared is not None

    def ref(k: int, j: int) -> str | None:
        """The rule for k items from index j on ("" for none), None when there are too few."""
        if free[j] < k:
            return None
        if k == 0:
            return ""
        return f"{shared if reuse and j > last else name}_{k}_{j}"

    rules = [f"{name} ::= {ref(n, 0)}"]
    for k in range(1, n + 1):
        for j in range(m if not reuse else min(m, last + 1)):
            if free[j] < k:
                continue
            alternatives = []
            rest = ref(k - 1, j + 1)
            if j not in exclude and rest is not None:
                alternatives.append(_lit(items[j]) + (f" {_lit(sep)} {rest}" if rest else ""))
            skip = ref(k, j + 1)
            if skip is not None:
                alternatives.append(skip)
            rules.append(f"{name}_{k}_{j} ::= {' | '.join(alternatives)}")
    return rules


class _WrongOptions:
    """The wrong-option rules of one MC grammar: for each answer, three different spans (of its
    kind where the documents offer enough, else of any kind) none of which overlaps it."""

    def __init__(self, spans: Sequence[str]) -> None:
        self.lists = wrong_option_lists(spans)
        self.chains: dict[tuple[str, frozenset[int]], str] = {}

    def rule_for(self, answer: str) -> str:
        """The name of the rule for `answer`'s wrong options (made on first use)."""
        for list_name in (span_kind(answer), "any"):
            items = self.lists.get(list_name)
            if items is None:
                continue
            exclude = frozenset(i for i, item in enumerate(items) if overlaps(item, answer))
            if len(items) - len(exclude) >= WRONG_OPTIONS:
                break
        else:  # too few spans besides the answer: any three (the quality rule judges the record)
            list_name, exclude = "any", frozenset()
        key = (list_name, exclude)
        if key not in self.chains:
            self.chains[key] = f"wrong_{list_name}" + (f"_x{len(self.chains)}" if exclude else "")
        return self.chains[key]

    def rules(self) -> list[str]:
        out = []
        generic = {list_name for list_name, _ in self.chains}
        for list_name in sorted(generic):
            out += _distinct_choice_rules(f"wrong_{list_name}", self.lists[list_name], sep="\nWrong: ")
        for (list_name, exclude), name in self.chains.items():
            if exclude:
                out += _distinct_choice_rules(name, self.lists[list_name], sep="\nWrong: ", exclude=exclude,
                                              shared=f"wrong_{list_name}")
        return out


def _always(_text: str) -> bool:
    return True


def questioner_grammar(
    task: str, documents: Sequence[str | Mapping[str, object]], cloze: bool = False,
    fits: Callable[[str], bool] | None = None,
) -> str | None:
    """The EBNF of a grounded questioner record for `task` over `documents`; None when the
    documents offer no usable evidence sentence (the caller falls back to the JSON schema).

    `cloze` (structured.cloze_questions): the question is the cloze of the evidence sentence,
    `Which name|year|date|number completes "... ___ ..."?` with the answer the blanked span, so the
    questioner chooses the fact (the sentence and the span) and the grammar writes the rest. For
    DocMath two quantities are blanked and the question asks their difference or sum
    (`arithmetic_questions`), the answer computed; documents that offer no such pair get the free
    DocMath question instead (a step keeps its DocMath prompt).

    `fits(text)`: whether a record of this text fits the questioner's token limit. A sentence (or
    cloze) whose shortest record would not fit is left out: the grammar would force text that the
    limit then cuts off, a format error that is not the model's. When no record fits at all (a
    limit of a few tokens), every one is offered as without `fits`: the cut records are format
    errors the run reports, rather than steps without a question."""
    if task not in ("doc_general_qa", "doc_mc", "docmath_qa"):
        raise ValueError(f"unknown task {task!r}")
    fits = fits or _always
    all_spans = candidate_spans(documents, limit=64)
    wrong_options = _WrongOptions(all_spans) if task == "doc_mc" else None
    longest = max(all_spans, key=len, default="")
    wrong_tail = f"\nWrong: {longest}" * 3 if task == "doc_mc" else ""
    cloze_of = arithmetic_clozes if task == "docmath_qa" else clozes
    blanks: dict[int, list[tuple[str, str]]] = {}
    evidence = []
    for e in evidence_candidates(documents):
        if task == "docmath_qa" and not e.numeric:
            continue
        head = f"Evidence: {e.sentence}\nQuestion: "
        if cloze:
            blanks[id(e)] = [(q, a) for q, a in cloze_of(e, documents) if fits(f"{head}{q}\nAnswer: {a}{wrong_tail}")]
            if blanks[id(e)]:
                evidence.append(e)
        elif fits(f"{head}What is the figure?\nAnswer: {max(e.spans, key=len) if task != 'docmath_qa' else '-1,000.25'}{wrong_tail}"):
            evidence.append(e)
    if not evidence:
        if cloze and task == "docmath_qa":
            return questioner_grammar(task, documents, cloze=False, fits=fits)
        return questioner_grammar(task, documents, cloze) if fits is not _always else None
    rules = ["root ::= " + " | ".join(f"e{i}" for i in range(len(evidence)))]

    def answer_then_wrong(answer: str) -> str:
        """The answer literal and, for MC, its three wrong options."""
        if wrong_options is None:
            return _lit(answer)
        return f'{_lit(answer)} "\\nWrong: " {wrong_options.rule_for(answer)}'

    for i, e in enumerate(evidence):
        head = f'"Evidence: " {_lit(e.sentence)} "\\nQuestion: "'
        if cloze:
            choices = " | ".join(_lit(question) + ' "\\nAnswer: " ' + answer_then_wrong(answer) for question, answer in blanks[id(e)])
            rules.append(f"e{i} ::= {head} ({choices})")
        elif task == "docmath_qa":
            rules.append(f'e{i} ::= {head} question "\\nAnswer: " number')
        else:
            rules.append(f'e{i} ::= {head} question "\\nAnswer: " ({" | ".join(answer_then_wrong(a) for a in dict.fromkeys(e.spans))})')
    if wrong_options is not None:
        rules += wrong_options.rules()
    if cloze:
        return "\n".join(rules) + "\n"
    return "\n".join(rules) + "\n" + _QUESTION_RULES + (_NUMBER_RULE if task == "docmath_qa" else "")


MAX_ANSWER_CHARS = 60
_ANSWER_TAIL = {
    "doc_general_qa": f'"The correct answer is " [^\\n]{{1,{MAX_ANSWER_CHARS}}}',
    "doc_mc": '"The correct answer is (" [ABCD] ")"',
    "docmath_qa": '"The correct answer is " number',
}


def responder_grammar(task: str) -> str:
    """The responder's whole output under structured.responder: one line, "The correct answer is
    ..." (a short answer, "(X)" for MC, a number for DocMath). Quoting an evidence sentence first
    was tried and dropped: 5x the tokens, no better on the held-out sets (docs/benchmarks.md)."""
    if task not in _ANSWER_TAIL:
        raise ValueError(f"unknown task {task!r}")
    return f"root ::= {_ANSWER_TAIL[task]}\n" + (_NUMBER_RULE if task == "docmath_qa" else "")


def verifier_grammar() -> str:
    """The small-model verifier's whole output: one decision word."""
    return 'root ::= "YES" | "NO"\n'


# ------------------------------------------------------------------------------ reading records


_LINE = re.compile(r"^(Evidence|Question|Answer|Wrong):[ \t]*(.*)$", re.MULTILINE)


def read_labelled_record(text: str) -> dict[str, object] | None:
    """The fields of a labelled-lines record ("Evidence: ...", "Question: ...", "Answer: ...",
    "Wrong: ..." lines); None when it has no Question or no Answer line."""
    fields: dict[str, object] = {}
    wrong: list[str] = []
    for m in _LINE.finditer(text):
        key, value = m.group(1).lower(), m.group(2).strip()
        if key == "wrong":
            wrong.append(value)
        else:
            fields.setdefault(key, value)
    if "question" not in fields or "answer" not in fields:
        return None
    if wrong:
        fields["wrong"] = wrong
    return fields


def mc_options(question: str, right: str, wrong: Sequence[str]) -> tuple[dict[str, str], str]:
    """The four options A-D and the right letter: the right answer and the three wrong ones in an
    order drawn from the question's text (the same record always gets the same letters, and the
    letters are spread evenly over many records)."""
    if len(wrong) != 3:
        raise ValueError("multiple choice needs exactly three wrong options")
    digest = hashlib.sha256(f"{question}\n{right}".encode()).digest()
    slot = digest[0] % 4
    rest = list(wrong)
    values = rest[:slot] + [right] + rest[slot:]
    return dict(zip("ABCD", values)), "ABCD"[slot]


def labelled_as_record(task: str, text: str) -> dict[str, object] | None:
    """A labelled-lines record in the shape of the JSON record (spell/parsing.py reads both):
    question, answer and, for MC, options A-D with the right letter as the answer."""
    fields = read_labelled_record(text)
    if fields is None:
        return None
    record: dict[str, object] = {"question": fields["question"], "answer": fields["answer"]}
    if "evidence" in fields:
        record["evidence"] = fields["evidence"]
    if task == "doc_mc":
        wrong = fields.get("wrong") or []
        if len(wrong) != 3:
            return record  # no options: the reader reports the format error
        record["options"], record["answer"] = mc_options(str(fields["question"]), str(fields["answer"]), list(wrong))
    return record
