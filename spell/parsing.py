"""Reading model output for the three roles. Nothing here raises on model text or evaluates it.

- `split_think(text)`: the answer part (after the last `</think>`); None for an unclosed `<think>`.
- `parse_questioner(task, text, strict=...)`: the questioner's record, validated per task ->
  `QuestionParse` (strict: read as the release reads it).
- `extract_answer(task, text)`: the responder's final answer string, or None.
- `parse_verifier(text)`: 1 (YES), 0 (NO), -1 (neither, both, or unreadable).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from spell.answers import after_last, last_boxed, parse_number
from spell.grounded import labelled_as_record

LETTERS = ("A", "B", "C", "D")
MAX_TEXT = 200_000  # longer outputs are cut before parsing (a bound on the work, not a rule)

# Questioner outcomes.
OK = "ok"
FORMAT_ERROR = "format_error"  # no parseable / valid record: reward -1
DROPPED = "dropped"  # no answer (unclosed <think>) or an over-long QA answer: not trained on


def split_think(text: str) -> str | None:
    """Text after the last `</think>`; the whole text when there is no think block; None when a
    `<think>` was opened and never closed (the model ran out of tokens while thinking)."""
    if not isinstance(text, str):
        return None
    pos = text.rfind("</think>")
    if pos >= 0:
        return text[pos + len("</think>") :]
    if "<think>" in text:
        return None
    return text


# ---------------------------------------------------------------------------------------------
# Questioner
# ---------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


# strict=False: raw control characters (a tab) inside strings are read, not refused. xgrammar's
# JSON grammar lets them through, so a constrained record may hold one.
def _loads_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _single_embedded_object(text: str, max_starts: int = 64) -> dict[str, Any] | None:
    """The one top-level JSON object embedded in `text` (structured output with stray text)."""
    decoder = json.JSONDecoder(strict=False)
    found: list[dict[str, Any]] = []
    pos, starts = 0, 0
    while starts < max_starts:
        start = text.find("{", pos)
        if start < 0:
            break
        starts += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        pos = end
    return found[0] if len(found) == 1 else None


def extract_record(text: str) -> dict[str, Any] | None:
    """The questioner's JSON record: the last fenced json block that parses to an object, else the
    whole text, else the single JSON object embedded in the text."""
    text = text[:MAX_TEXT]
    for block in reversed(_FENCE.findall(text)):
        record = _loads_object(block.strip())
        if record is not None:
            return record
    stripped = text.strip()
    record = _loads_object(stripped)
    if record is not None:
        return record
    return _single_embedded_object(text)


_RELEASE_FENCE = re.compile(r"```json(.*?)```", re.DOTALL)


def _strip_control(text: str) -> str:
    return "".join(ch for ch in text if ord(ch) >= 32 or ch in "\n\r\t")


def extract_record_strict(text: str) -> dict[str, Any] | None:
    """The questioner's record as the release reads it: control characters dropped, then the last
    ```json fenced block that parses (an object, else nothing), else the whole text if it parses
    to an object. Strict JSON (no raw control characters inside strings), no other fence tags and
    no object embedded in prose."""
    text = _strip_control(text[:MAX_TEXT])
    for block in reversed(_RELEASE_FENCE.findall(text)):
        try:
            value = json.loads(block.strip())
        except (ValueError, RecursionError):
            continue
        return value if isinstance(value, dict) else None
    try:
        value = json.loads(text.strip())
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@dataclass
class QuestionParse:
    """A questioner sample read and checked. `status` is OK, FORMAT_ERROR or DROPPED."""

    task: str
    status: str
    reason: str = ""
    question: str = ""
    answer: str = ""
    options: dict[str, str] | None = None
    answer_value: float | None = None  # docmath_qa: the reference as a number
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value) if math.isfinite(value) else None
    return None


def normalise_letter(value: Any) -> str | None:
    """'B', '(B)', 'b', 'B.', 'B) text' -> 'B'; None otherwise."""
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"\s*\(?\s*([A-Da-d])\s*(?:[).:]\s*.*)?", value, re.DOTALL)
    return m.group(1).upper() if m else None


def _whitespace_tokens(text: str) -> int:
    return len(text.split())


def parse_questioner(
    task: str,
    text: str,
    *,
    max_answer_tokens: int = 40,
    count_tokens: Callable[[str], int] | None = None,
    strict: bool = False,
) -> QuestionParse:
    """Read and validate a questioner sample for `task` (free form, structured JSON, or the
    small style's labelled lines, spell/grounded.py).

    MC needs options A-D and a letter answer (else FORMAT_ERROR). DocMath needs a number, string
    or JSON number: one that is zero or does not read as a number is DROPPED (not trained: the
    release's rule), any other type is a FORMAT_ERROR. General-QA answers over `max_answer_tokens`
    tokens (counted by `count_tokens`, default: whitespace words) are DROPPED. An unclosed <think>
    is DROPPED; anything else unusable is a FORMAT_ERROR.
    `strict`: the record is read as the release reads it (`extract_record_strict`); otherwise bare
    and embedded JSON objects and any fence are read too (`extract_record`).
    """
    body = split_think(text)
    if body is None:
        return QuestionParse(task, DROPPED, "unclosed <think>: no answer part")
    record = extract_record_strict(body) if strict else extract_record(body)
    if record is None and not strict:
        # The small style's grounded record: "Evidence: / Question: / Answer: [/ Wrong:]" lines.
        record = labelled_as_record(task, body)
    if record is None:
        return QuestionParse(task, FORMAT_ERROR, "no JSON record found")
    out = QuestionParse(task, FORMAT_ERROR, record=record)
    question = _text(record.get("question"))
    if not question:
        out.reason = "missing or empty 'question'"
        return out
    out.question = question

    if task == "doc_mc":
        options = record.get("options")
        if not isinstance(options, Mapping):
            out.reason = "'options' must be an object with keys A-D"
            return out
        opts: dict[str, str] = {}
        for key, value in options.items():
            letter = normalise_letter(key) if isinstance(key, str) and len(key.strip()) <= 3 else None
            val = _text(value)
            if letter is None or not val:
                out.reason = f"bad option {str(key)[:20]!r}"
                return out
            opts[letter] = val
        if sorted(opts) != list(LETTERS) or len(options) != 4:
            out.reason = "'options' must have exactly the keys A, B, C, D"
            return out
        letter = normalise_letter(record.get("answer"))
        if letter is None:
            out.reason = "'answer' must be a letter A-D"
            return out
        out.options, out.answer = opts, letter
    elif task == "docmath_qa":
        raw = record.get("answer")
        if not isinstance(raw, (str, int, float)):  # bool is an int: read below as no number
            out.reason = "'answer' must be a number"
            return out
        value: float | None
        if isinstance(raw, bool):
            value = None
        elif isinstance(raw, (int, float)):
            value = float(raw) if math.isfinite(raw) else None
        else:
            value = parse_number(raw)
        # A well-formed record whose answer is no usable number is dropped, not penalised: the
        # release counts it as neither a good nor a bad case.
        if value is None:
            out.status, out.reason = DROPPED, "'answer' does not read as a number"
            return out
        if value == 0:
            out.status, out.reason = DROPPED, "'answer' is zero"
            return out
        out.answer = _text(raw) or ""
        out.answer_value = value
    elif task == "doc_general_qa":
        answer = _text(record.get("answer"))
        if not answer:
            out.reason = "missing or empty 'answer'"
            return out
        out.answer = answer
        n = (count_tokens or _whitespace_tokens)(answer)
        if n > max_answer_tokens:
            out.status, out.reason = DROPPED, f"answer has {n} tokens (max {max_answer_tokens})"
            return out
    else:
        out.reason = f"unknown task {task!r}"
        return out
    out.status, out.reason = OK, ""
    return out


# ---------------------------------------------------------------------------------------------
# Responder
# ---------------------------------------------------------------------------------------------

# The release's patterns, in its priority order: the first pattern that occurs decides, and its
# last occurrence gives the letter. Ours also take a colon or several spaces after "is", and the
# letter must end there ("the answer is Denver" is not D).
_MC_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"\\boxed\{\s*\(?([A-D])\)?\s*\}",
        r"(?i:correct\s+answer\s+is)[\s:]*\(\s*([A-D])\s*\)",
        r"(?i:correct\s+answer\s+is)[\s:]*([A-D])(?![A-Za-z0-9])",
        r"(?i:answer\s+is)[\s:]*\(\s*([A-D])\s*\)",
        r"(?i:answer\s+is)[\s:]*([A-D])(?![A-Za-z0-9])",
    )
)


def extract_mc_letter(body: str) -> str | None:
    """The letter A-D of an MC answer, by the release's patterns in their priority order
    ("\\boxed{X}", "correct answer is (X)", "correct answer is X", "answer is (X)", "answer is
    X"; '*' removed first): the last match of the first pattern that matches. So "The correct
    answer is (B) ... the answer is C" gives B. None when no pattern matches."""
    body = body[:MAX_TEXT].replace("*", "")
    for pattern in _MC_PATTERNS:
        found = pattern.findall(body)
        if found:
            return found[-1]
    return None


def _first_line_clean(text: str) -> str:
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    return first.strip().strip("*.:").strip().strip("*.").strip()


def extract_answer(task: str, text: str) -> str | None:
    """The responder's final answer for `task`, or None when it gave none.

    - doc_general_qa: first line after the last "answer is", stripped of '*' and '.';
    - doc_mc: the letter (see `extract_mc_letter`);
    - docmath_qa: the last \\boxed{} content, else the first line after "answer is".
    """
    body = split_think(text)
    if body is None:
        return None
    body = body[-MAX_TEXT:]
    if task == "doc_mc":
        return extract_mc_letter(body)
    if task == "docmath_qa":
        boxed = last_boxed(body)
        if boxed is not None and boxed.strip():
            return boxed.strip()
    if task in ("doc_general_qa", "docmath_qa"):
        rest = after_last(body, "answer is")
        if rest is None:
            return None
        answer = _first_line_clean(rest)
        return answer or None
    return None


# ---------------------------------------------------------------------------------------------
# Verifier
# ---------------------------------------------------------------------------------------------

_YES = re.compile(r"\[\[\s*yes\s*\]\]", re.IGNORECASE)
_NO = re.compile(r"\[\[\s*no\s*\]\]", re.IGNORECASE)
# Bare decisions, as the release also reads them: capital words only ("no answer" in prose is
# not a decision), and whole words ("NOTE" is not a NO).
_BARE_YES = re.compile(r"(?<![A-Za-z])YES(?![A-Za-z])")
_BARE_NO = re.compile(r"(?<![A-Za-z])NO(?![A-Za-z])")


def parse_verifier(text: str) -> int:
    """1 for YES only, 0 for NO only, -1 for neither or both (a format error).

    Accepts the free form ("[[YES]]" / "[[NO]]"; without brackets, as the release reads it, a
    bare capital YES or NO when the other does not occur: "Decision: YES") and the structured form
    {"explanation": ..., "decision": "YES" | "NO"}. Brackets win over bare words.
    """
    body = split_think(text)
    if body is None:
        return -1
    body = body[:MAX_TEXT]
    stripped = body.strip()
    if stripped.startswith("{") or stripped.startswith("```"):
        record = extract_record(stripped)
        if record is not None and "decision" in record:
            decision = record.get("decision")
            if isinstance(decision, str):
                d = decision.strip().strip("[]").strip().upper()
                if d == "YES":
                    return 1
                if d == "NO":
                    return 0
            return -1
    yes, no = _YES.search(body) is not None, _NO.search(body) is not None
    if yes or no:
        return 1 if yes and not no else 0 if no and not yes else -1
    yes, no = _BARE_YES.search(body) is not None, _BARE_NO.search(body) is not None
    if yes and not no:
        return 1
    if no and not yes:
        return 0
    return -1
