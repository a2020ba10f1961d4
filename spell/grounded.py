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
each a span of the documents; the four options are then put in an order drawn from the record
itself (`mc_options`), so the model never has to track letters. DocMath's answer is a number
(checked for being derived from the documents by spell/quality.py).

The grammars are xgrammar EBNF (the engines compile them; vLLM takes the same text). Everything
here is a pure function of the documents, so the same prompt gets the same grammar in every
process.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from spell.spans import candidate_spans, numbers_stated

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

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(]?[A-Z0-9])|\n+")
_ABBREVIATIONS = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|St|Mt|No|Co|Ltd|Inc|vs|etc|e\.g|i\.e)\.$")


@dataclass(frozen=True)
class Evidence:
    sentence: str
    spans: tuple[str, ...]  # answer spans stated in the sentence
    numeric: bool  # the sentence states a number (DocMath evidence)


def _text_of(doc: str | Mapping[str, object]) -> str:
    if isinstance(doc, Mapping):
        return str(doc.get("text") or "")
    return str(doc)


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


def questioner_grammar(task: str, documents: Sequence[str | Mapping[str, object]]) -> str | None:
    """The EBNF of a grounded questioner record for `task` over `documents`; None when the
    documents offer no usable evidence sentence (the caller falls back to the JSON schema)."""
    evidence = evidence_candidates(documents)
    if task == "docmath_qa":
        evidence = [e for e in evidence if e.numeric]
    if not evidence:
        return None
    rules = ["root ::= " + " | ".join(f"e{i}" for i in range(len(evidence)))]
    all_spans = candidate_spans(documents, limit=64)
    for i, e in enumerate(evidence):
        head = f'"Evidence: " {_lit(e.sentence)} "\\nQuestion: " question "\\nAnswer: "'
        if task == "doc_general_qa":
            rules.append(f"e{i} ::= {head} a{i}")
            rules.append(f"a{i} ::= {_alternatives(e.spans)}")
        elif task == "doc_mc":
            rules.append(f'e{i} ::= {head} a{i} "\\nWrong: " span "\\nWrong: " span "\\nWrong: " span')
            rules.append(f"a{i} ::= {_alternatives(e.spans)}")
        elif task == "docmath_qa":
            rules.append(f"e{i} ::= {head} number")
        else:
            raise ValueError(f"unknown task {task!r}")
    if task == "doc_mc":
        rules.append(f"span ::= {_alternatives(all_spans)}")
    text = "\n".join(rules) + "\n" + _QUESTION_RULES
    return text + (_NUMBER_RULE if task == "docmath_qa" else "")


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
