"""Evaluation sets in their public formats, read into one `EvalItem` record.

    LongBench-v2 (JSON list; choice_A..choice_D, answer letter)      -> task "doc_mc"
    LongBench QA (JSON lines; input, context, answers list)          -> task "doc_general_qa"
    DocMath-Eval (JSON list; paragraphs list, ground_truth number)   -> task "docmath_qa"
    items (JSON lines of EvalItem fields: what the web app stores and hands a run)

Each reader accepts a JSON list or JSON lines. DocMath's `python_solution` is never executed: the
answer is `ground_truth`, the number. `middle_truncate` keeps the head and tail of an over-long
input, as LongBench and the paper do at 16K / 100K.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

TASKS = ("doc_mc", "doc_general_qa", "docmath_qa")
CHOICE_LETTERS = ("A", "B", "C", "D")
FORMATS = ("longbench_v2", "longbench_qa", "docmath", "items")

T = TypeVar("T")


@dataclass(frozen=True)
class EvalItem:
    id: str
    task: str  # one of TASKS
    question: str
    context: str
    choices: list[str] | None  # four options for doc_mc, in letter order; else None
    answers: list[str]  # doc_mc: [letter]; QA: accepted answers; docmath: [the number as text]
    source: str  # benchmark / sub-dataset name
    meta: dict[str, Any] = field(default_factory=dict)


class EvalSetFormatError(ValueError):
    pass


def _load_records(path: str | os.PathLike) -> list[dict]:
    """A JSON list of objects, one JSON object, or JSON lines."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise EvalSetFormatError(f"{path}: not UTF-8 text") from None
    if not text.strip():
        raise EvalSetFormatError(f"{path}: the file is empty")
    try:
        data = json.loads(text)
        records = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvalSetFormatError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise EvalSetFormatError(f"{path}, record {index}: expected a JSON object")
    if not records:
        raise EvalSetFormatError(f"{path}: no records")
    return records


def _require(record: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = record.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise EvalSetFormatError(f"{where}: '{key}' is missing or has the wrong type")
    return value


def _longbench_v2_item(record: dict, where: str) -> EvalItem:
    choices = [str(_require(record, f"choice_{letter}", str, where)) for letter in CHOICE_LETTERS]
    answer = str(_require(record, "answer", str, where)).strip().upper()
    if answer not in CHOICE_LETTERS:
        raise EvalSetFormatError(f"{where}: 'answer' must be one of A, B, C, D, not {answer!r}")
    meta = {k: record[k] for k in ("domain", "sub_domain", "difficulty", "length") if k in record}
    return EvalItem(str(_require(record, "_id", (str, int), where)), "doc_mc",
                    _require(record, "question", str, where), _require(record, "context", str, where),
                    choices, [answer], "longbench_v2", meta)


def _longbench_qa_item(record: dict, where: str) -> EvalItem:
    answers = _require(record, "answers", list, where)
    if not answers or not all(isinstance(a, str) for a in answers):
        raise EvalSetFormatError(f"{where}: 'answers' must be a non-empty list of strings")
    meta = {k: record[k] for k in ("length", "language", "all_classes") if k in record}
    return EvalItem(str(_require(record, "_id", (str, int), where)), "doc_general_qa",
                    _require(record, "input", str, where), _require(record, "context", str, where),
                    None, list(answers), str(record.get("dataset") or "longbench"), meta)


def format_number(value: float | int) -> str:
    """A DocMath ground truth as text: integers without a decimal point, others as Python
    prints them (shortest round-trip form)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _docmath_item(record: dict, where: str) -> EvalItem:
    paragraphs = _require(record, "paragraphs", list, where)
    if not all(isinstance(p, str) for p in paragraphs):
        raise EvalSetFormatError(f"{where}: 'paragraphs' must be a list of strings")
    truth = record.get("ground_truth")
    if isinstance(truth, bool) or not isinstance(truth, (int, float)):
        raise EvalSetFormatError(f"{where}: 'ground_truth' must be a number")
    meta = {"ground_truth": float(truth)}
    for key in ("table_evidence", "paragraph_evidence"):
        if key in record:
            meta[key] = record[key]
    return EvalItem(str(_require(record, "question_id", (str, int), where)), "docmath_qa",
                    _require(record, "question", str, where), "\n\n".join(paragraphs), None,
                    [format_number(truth)], str(record.get("source") or "docmath"), meta)


def _stored_item(record: dict, where: str) -> EvalItem:
    """One item as read earlier from a public format and stored (dataclasses.asdict(EvalItem))."""
    task = _require(record, "task", str, where)
    if task not in TASKS:
        raise EvalSetFormatError(f"{where}: 'task' must be one of {', '.join(TASKS)}, not {task!r}")
    answers = _require(record, "answers", list, where)
    choices = record.get("choices")
    if choices is not None and (not isinstance(choices, list) or len(choices) != 4):
        raise EvalSetFormatError(f"{where}: 'choices' must be null or a list of four options")
    return EvalItem(str(_require(record, "id", (str, int), where)), task, _require(record, "question", str, where),
                    _require(record, "context", str, where), choices, [str(a) for a in answers],
                    str(record.get("source") or "items"), dict(record.get("meta") or {}))


_READERS: dict[str, Callable[[dict, str], EvalItem]] = {
    "longbench_v2": _longbench_v2_item,
    "longbench_qa": _longbench_qa_item,
    "docmath": _docmath_item,
    "items": _stored_item,
}
# The keys that identify a format: present in every record of it.
_SIGNATURES = {
    "longbench_v2": {"_id", "question", "choice_A", "choice_B", "choice_C", "choice_D", "answer", "context"},
    "longbench_qa": {"_id", "input", "context", "answers"},
    "docmath": {"question_id", "question", "paragraphs", "ground_truth"},
    "items": {"id", "task", "question", "context", "choices", "answers", "source"},
}


def detect_format_of(record: dict) -> str:
    for name, keys in _SIGNATURES.items():
        if keys <= record.keys():
            return name
    raise EvalSetFormatError(
        "unknown eval-set format: expected LongBench-v2 (_id, question, choice_A..choice_D, answer, "
        "context), LongBench QA (_id, input, context, answers) or DocMath-Eval (question_id, "
        f"question, paragraphs, ground_truth); the first record has {', '.join(sorted(record)) or 'no keys'}")


def detect_format(path: str | os.PathLike) -> str:
    return detect_format_of(_load_records(path)[0])


def read_eval_set(path: str | os.PathLike, format: str | None = None) -> list[EvalItem]:
    """Read any of the three formats; `format` (one of FORMATS) skips detection."""
    records = _load_records(path)
    name = format or detect_format_of(records[0])
    if name not in _READERS:
        raise EvalSetFormatError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}")
    try:
        return [_READERS[name](record, f"{path}, record {i}") for i, record in enumerate(records, start=1)]
    except EvalSetFormatError as exc:
        raise EvalSetFormatError(f"{exc} (read as {name})") from None


def read_longbench_v2(path: str | os.PathLike) -> list[EvalItem]:
    return read_eval_set(path, "longbench_v2")


def read_longbench_qa(path: str | os.PathLike) -> list[EvalItem]:
    return read_eval_set(path, "longbench_qa")


def read_docmath(path: str | os.PathLike) -> list[EvalItem]:
    return read_eval_set(path, "docmath")


def middle_truncate(token_ids: Sequence[T], budget: int) -> list[T]:
    """Keep the first budget//2 and the last budget - budget//2 tokens when over budget."""
    if budget < 0:
        raise ValueError("budget must be >= 0")
    if len(token_ids) <= budget:
        return list(token_ids)
    head = budget // 2
    tail = budget - head
    return list(token_ids[:head]) + (list(token_ids[-tail:]) if tail else [])
