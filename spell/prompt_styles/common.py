"""What every prompt style shares: document fields, choices, example records, the JSON formats."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

Document = Union[str, Mapping[str, Any]]

EMPTY_DOCUMENTS = "Empty"  # what the grounding check shows instead of the documents
PLACEHOLDER = "(insert answer here)"
LETTERS = ("A", "B", "C", "D")

# The questioner's record, per task, as the prompts show it.
TASK_FORMAT = {
    "doc_general_qa": '{"question": "...", "answer": "..."}',
    "doc_mc": (
        '{"question": "...", "options": {"A": "...", "B": "...", "C": "...", "D": "..."}, '
        '"answer": "A" | "B" | "C" | "D"}'
    ),
    "docmath_qa": '{"question": "...", "answer": <a number, no units>}',
}


def document_fields(doc: Document, position: int) -> tuple[int, str, str]:
    """(label number, title, text) of a document; the number is its "number" when given (its
    place in its cluster, so every role names a document alike), else its position (1-based)."""
    if isinstance(doc, Mapping):
        number = doc.get("number")
        title = str(doc.get("title") or "").strip()
        text = str(doc.get("text") or "")
    else:
        number, title, text = None, "", str(doc)
    label = number if isinstance(number, int) and not isinstance(number, bool) else position
    return label, title, text.strip()


def format_choices(options: Mapping[str, str]) -> str:
    return "\n".join(f"({k}) {options[k]}" for k in LETTERS if k in options)


def question_text(task: str, question: str, options: Mapping[str, str] | None = None) -> str:
    """The question as the responder and verifier see it (MC with its choices, in LongBench-v2's
    wording, which the release uses too)."""
    if task == "doc_mc" and options:
        return f"What is the correct answer to this question: {question}\nChoices:\n{format_choices(options)}"
    return question


def format_example(task: str, example: Mapping[str, Any]) -> str:
    """A remembered question with its answer (MC with its choices)."""
    lines = [f"Question: {example.get('question', '')}"]
    options = example.get("options")
    if task == "doc_mc" and isinstance(options, Mapping):
        lines.append("Choices:\n" + format_choices(options))
    lines.append(f"Answer: {example.get('answer', '')}")
    return "\n".join(lines)


def examples_text(task: str, memory: Sequence[Mapping[str, Any]]) -> str:
    return "\n\n".join(f"Example {i}:\n{format_example(task, ex)}" for i, ex in enumerate(memory, 1))
