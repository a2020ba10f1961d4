"""Role prompts, as chat messages (one user turn each), and the JSON schemas of structured output.

Our own wording of the roles SPELL.md describes. Bump PROMPT_VERSION whenever a text changes: it
is recorded in every run's provenance.

Documents are given as strings or as mappings with "text" (and optionally "title").
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

PROMPT_VERSION = "spell-prompts-2026.11-2"

Document = Union[str, Mapping[str, Any]]
Message = dict[str, str]

EMPTY_DOCUMENTS = "Empty"  # what the grounding check shows instead of the documents
PLACEHOLDER = "(insert answer here)"

_TASK_BRIEF = {
    "doc_general_qa": (
        "Write one multi-hop question whose answer is short (a name, date, number or phrase of "
        "under 20 words) and can only be found by combining facts from ALL the documents shown. "
        "The question must not be answerable from any single document or from general knowledge."
    ),
    "doc_mc": (
        "Write one multiple-choice question with four options A, B, C and D. Exactly one option "
        "is correct; each of the three wrong options must follow a different, plausible mistake "
        "(a misread figure, a wrong entity, a step left out). Answering must require combining "
        "facts from several of the documents."
    ),
    "docmath_qa": (
        "Write one numerical question that needs calculation over figures stated in the "
        "documents (growth rates, differences, ratios, totals across tables or paragraphs). The "
        "answer is a single non-zero number. Do not ask to count items or to look up a single "
        "value that is printed in the text."
    ),
}

_TASK_FORMAT = {
    "doc_general_qa": '{"question": "...", "answer": "..."}',
    "doc_mc": (
        '{"question": "...", "options": {"A": "...", "B": "...", "C": "...", "D": "..."}, '
        '"answer": "A" | "B" | "C" | "D"}'
    ),
    "docmath_qa": '{"question": "...", "answer": <a number, no units>}',
}

_ANSWER_ENDING = {
    "doc_general_qa": f'End your response with: "The correct answer is {PLACEHOLDER}".',
    "doc_mc": 'End your response with: "The correct answer is (X)", where X is A, B, C or D.',
    "docmath_qa": (
        'End your response with: "Therefore, the answer is X", where X is a single number '
        "(no units or words)."
    ),
}


def _check_task(task: str) -> None:
    if task not in _TASK_BRIEF:
        raise ValueError(f"unknown task {task!r}")


def format_documents(documents: Sequence[Document] | None) -> str:
    """Numbered documents; the word 'Empty' when there are none (the grounding check)."""
    if not documents:
        return EMPTY_DOCUMENTS
    parts = []
    for i, doc in enumerate(documents, 1):
        if isinstance(doc, Mapping):
            title = str(doc.get("title") or "").strip()
            text = str(doc.get("text") or "")
        else:
            title, text = "", str(doc)
        head = f"Document {i}" + (f" ({title})" if title else "")
        parts.append(f"{head}:\n{text.strip()}")
    return "\n\n".join(parts)


def format_choices(options: Mapping[str, str]) -> str:
    return "\n".join(f"({k}) {options[k]}" for k in ("A", "B", "C", "D") if k in options)


def _format_example(task: str, example: Mapping[str, Any]) -> str:
    lines = [f"Question: {example.get('question', '')}"]
    options = example.get("options")
    if task == "doc_mc" and isinstance(options, Mapping):
        lines.append("Choices:\n" + format_choices(options))
    lines.append(f"Answer: {example.get('answer', '')}")
    return "\n".join(lines)


def questioner_messages(
    task: str,
    documents: Sequence[Document],
    memory: Sequence[Mapping[str, Any]] = (),
    *,
    structured: bool = False,
) -> list[Message]:
    """The questioner's prompt for `task` over `documents`.

    `memory`: remembered questions of this (task, cluster), oldest first, each a mapping with
    "question", "answer" and for MC "options". With memory, the questioner is asked for ONE new
    question, clearly harder than and different from the examples.
    `structured`: the record is decoded under `questioner_schema(task)`, so the prompt asks for a
    bare JSON object instead of reasoning followed by a fenced block.
    """
    _check_task(task)
    parts = [
        "You write exam questions that test careful reading of long documents.",
        "",
        "<documents>",
        format_documents(documents),
        "</documents>",
        "",
        "Task: " + _TASK_BRIEF[task],
    ]
    if memory:
        parts += [
            "",
            "Questions already asked about these documents (with their answers):",
            "",
            "\n\n".join(
                f"Example {i}:\n{_format_example(task, ex)}" for i, ex in enumerate(memory, 1)
            ),
            "",
            "Propose ONE new question that is clearly harder than every example above and "
            "different from them: it should need more documents, more steps or subtler evidence. "
            "Do not repeat or rephrase an example.",
        ]
    else:
        parts += ["", "Propose ONE question."]
    if structured:
        parts += [
            "",
            "Reply with a single JSON object: an optional \"reasoning\" field first (brief), "
            f"then the fields {_TASK_FORMAT[task]}",
        ]
    else:
        parts += [
            "",
            "First reason step by step about which facts to combine. Then give the result as a "
            "fenced json block:",
            "```json",
            _TASK_FORMAT[task],
            "```",
        ]
    return [{"role": "user", "content": "\n".join(parts)}]


def question_text(task: str, question: str, options: Mapping[str, str] | None = None) -> str:
    """The question as the responder and verifier see it (MC with its choices)."""
    if task == "doc_mc" and options:
        return (
            f"What is the correct answer to this question: {question}\n"
            f"Choices:\n{format_choices(options)}"
        )
    return question


def responder_messages(
    task: str,
    documents: Sequence[Document] | None,
    question: str,
    options: Mapping[str, str] | None = None,
) -> list[Message]:
    """The responder's prompt: the documents (all of the cluster's) and the question.

    `documents=None` (or empty) shows the word "Empty" instead: that is the grounding prompt.
    """
    _check_task(task)
    body = [
        "Read the documents and answer the question.",
        "",
        "<documents>",
        format_documents(documents),
        "</documents>",
        "",
        question_text(task, question, options),
        "",
        "Think step by step, citing the facts you use. " + _ANSWER_ENDING[task],
    ]
    return [{"role": "user", "content": "\n".join(body)}]


def grounding_messages(
    task: str, question: str, options: Mapping[str, str] | None = None
) -> list[Message]:
    """The grounding check: the responder prompt with the documents replaced by 'Empty'."""
    return responder_messages(task, None, question, options)


def verifier_messages(
    task: str,
    question: str,
    answer: str | None,
    reference: str,
    options: Mapping[str, str] | None = None,
    *,
    structured: bool = False,
) -> list[Message]:
    """The verifier's prompt: the question, the responder's extracted answer and the reference
    answer; no documents. It judges whether the two answers mean the same thing."""
    _check_task(task)
    ref = reference
    if task == "doc_mc" and options and reference in options:
        ref = f"({reference}) {options[reference]}"
    shown = answer if answer else "(no answer given)"
    body = [
        "Judge whether a candidate answer to a question is equivalent to the reference answer.",
        "Equivalent means the same entity, value or choice, allowing different wording, units "
        "or formatting; a candidate that adds a wrong claim or hedges between options is not "
        "equivalent.",
        "",
        f"Question: {question_text(task, question, options)}",
        "",
        f"Candidate answer: {shown}",
        f"Reference answer: {ref}",
        "",
    ]
    if structured:
        body.append(
            'Reply with a JSON object {"explanation": "<one or two sentences>", '
            '"decision": "YES" or "NO"}.'
        )
    else:
        body.append(
            "Explain briefly, then end with [[YES]] if they are equivalent or [[NO]] if not. "
            "Write exactly one of the two."
        )
    return [{"role": "user", "content": "\n".join(body)}]


# ---------------------------------------------------------------------------------------------
# JSON schemas for structured role outputs (see SPELL.md, "Our extension")
# ---------------------------------------------------------------------------------------------


# A conservative characters-per-token figure for English text in a JSON string: a completion of N
# tokens holds at least about this many x N characters of free text, so free-text fields capped at
# that budget let the grammar close the record before the token limit cuts it off.
CHARS_PER_TOKEN = 2.5
# How a record's text budget is shared out over its free-text fields (the rest is JSON syntax).
_QUESTIONER_SHARES = {"reasoning": 0.40, "question": 0.30, "answer": 0.15, "option": 0.07}
_VERIFIER_EXPLANATION_SHARE = 0.80


def text_budget(max_tokens: int) -> int:
    """Characters of free text a structured record of at most `max_tokens` tokens may hold."""
    return max(64, int(max_tokens * CHARS_PER_TOKEN))


def _text(max_length: float | None, min_length: int = 0) -> dict[str, Any]:
    field: dict[str, Any] = {"type": "string"}
    if min_length:
        field["minLength"] = min_length
    if max_length is not None:
        field["maxLength"] = max(min_length + 8, int(max_length))
    return field


def questioner_schema(task: str, max_chars: int | None = None) -> dict[str, Any]:
    """The questioner's record: optional "reasoning" first, then the task's fields.

    `max_chars` (see text_budget) caps the free-text fields (maxLength, in shares of the budget):
    without a cap a small model's reasoning runs into the token limit, the record never closes and
    the question is a format error."""
    _check_task(task)

    def cap(field: str) -> float | None:
        return None if max_chars is None else max_chars * _QUESTIONER_SHARES[field]

    props: dict[str, Any] = {
        "reasoning": _text(cap("reasoning")),
        "question": _text(cap("question"), min_length=1),
    }
    required = ["question", "answer"]
    if task == "doc_mc":
        props["options"] = {
            "type": "object",
            "properties": {k: _text(cap("option"), min_length=1) for k in ("A", "B", "C", "D")},
            "required": ["A", "B", "C", "D"],
            "additionalProperties": False,
        }
        props["answer"] = {"type": "string", "enum": ["A", "B", "C", "D"]}
        required = ["question", "options", "answer"]
    elif task == "docmath_qa":
        # A zero answer is refused by the parser (SPELL.md: a numeric answer must be non-zero),
        # so the grammar does not offer it.
        props["answer"] = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "number", "exclusiveMaximum": 0}]}
    else:
        props["answer"] = _text(cap("answer"), min_length=1)
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def verifier_schema(max_chars: int | None = None) -> dict[str, Any]:
    """The verifier's decision, after an explanation (capped by `max_chars`, as for the questioner)."""
    return {
        "type": "object",
        "properties": {
            "explanation": _text(None if max_chars is None else max_chars * _VERIFIER_EXPLANATION_SHARE),
            "decision": {"type": "string", "enum": ["YES", "NO"]},
        },
        "required": ["explanation", "decision"],
        "additionalProperties": False,
    }
