"""Role prompts, as chat messages (one user turn each), and the JSON schemas of structured output.

The wording comes in two styles (`prompts.style`; spell/prompt_styles/): `release`, after the
SPELL release's prompts (paper-7b), and `small`, short prompts for small models (cpu-demo). Bump
PROMPT_VERSION whenever a text changes: it is recorded in every run's provenance.

Documents are given as strings or as mappings with "text" and optionally "title" and "number"
(the document's place in its cluster, 1-based: the small style labels documents with it, so the
questioner and the responder name the same text alike).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from spell.prompt_styles import STYLES, style_module
from spell.prompt_styles.common import (
    EMPTY_DOCUMENTS,
    LETTERS,
    PLACEHOLDER,
    Document,
    format_choices,
    question_text,
)

PROMPT_VERSION = "spell-prompts-2026.12-3"
DEFAULT_STYLE = "release"

Message = dict[str, str]

__all__ = [
    "DEFAULT_STYLE", "EMPTY_DOCUMENTS", "LETTERS", "PLACEHOLDER", "PROMPT_VERSION", "STYLES", "Document",
    "encode_messages", "end_of_turn_id", "format_choices", "format_documents", "grounding_messages", "question_text", "questioner_messages",
    "questioner_schema", "responder_messages", "text_budget", "verifier_messages", "verifier_schema",
]

_TASKS = ("doc_general_qa", "doc_mc", "docmath_qa")


def encode_messages(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """A prompt's token ids: the chat template with the assistant's turn opened, and no special
    tokens added a second time. Rollouts, evaluations and the warm-up all encode through here, so a
    model is trained on exactly the prompts it is later asked."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def end_of_turn_id(tokenizer: Any) -> int | None:
    """The token that closes a turn in the chat template (<|im_end|>), else EOS, else None."""
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        return im_end
    return None if tokenizer.eos_token_id is None else int(tokenizer.eos_token_id)


def _check_task(task: str) -> None:
    if task not in _TASKS:
        raise ValueError(f"unknown task {task!r}")


def _user(content: str) -> list[Message]:
    return [{"role": "user", "content": content}]


def _grounded(style: str):
    """The style module, which must word grounded records (structured.grounded)."""
    mod = style_module(style)
    if not hasattr(mod, "grounded_questioner"):
        raise ValueError(f"the {style!r} prompt style has no grounded records (use the small style)")
    return mod


def format_documents(documents: Sequence[Document] | None, style: str = DEFAULT_STYLE) -> str:
    """The documents as the style shows them; the word 'Empty' when there are none."""
    return style_module(style).format_documents(documents)


def questioner_messages(
    task: str,
    documents: Sequence[Document],
    memory: Sequence[Mapping[str, Any]] = (),
    *,
    structured: bool = False,
    style: str = DEFAULT_STYLE,
    target_letter: str | None = None,
    grounded: bool = False,
    cloze: bool = False,
) -> list[Message]:
    """The questioner's prompt for `task` over `documents`.

    `memory`: remembered questions of this (task, cluster), oldest first, each a mapping with
    "question", "answer" and for MC "options". With memory, the questioner is asked for ONE new
    question, clearly harder than and different from the examples.
    `structured`: the record is decoded under `questioner_schema(task)`, so the prompt asks for a
    bare JSON object instead of reasoning followed by a fenced block.
    `target_letter` (release style, MC): the letter the correct option must have, drawn by the
    caller to balance the answer letters, as the release intends.
    `grounded`: the small style's labelled-lines record (spell/grounded.py); `cloze` with it: the
    question is its evidence sentence's cloze (structured.cloze_questions).
    """
    _check_task(task)
    if grounded:
        mod = _grounded(style)
        return _user(mod.grounded_questioner(task, mod.format_documents(documents), list(memory), cloze=cloze))
    mod = style_module(style)
    return _user(mod.questioner(task, mod.format_documents(documents), list(memory),
                                structured=structured, target_letter=target_letter))


def responder_messages(
    task: str,
    documents: Sequence[Document] | None,
    question: str,
    options: Mapping[str, str] | None = None,
    *,
    style: str = DEFAULT_STYLE,
    grounded: bool = False,
) -> list[Message]:
    """The responder's prompt: the documents (all of the cluster's) and the question.

    `documents=None` (or empty) shows the word "Empty" instead: that is the grounding prompt.
    `grounded`: the small style's one-line answer (its grammar: spell/grounded.py).
    """
    _check_task(task)
    if grounded:
        mod = _grounded(style)
        return _user(mod.grounded_responder(task, mod.format_documents(documents), question, options))
    mod = style_module(style)
    return _user(mod.responder(task, mod.format_documents(documents), question, options))


def grounding_messages(
    task: str, question: str, options: Mapping[str, str] | None = None, *, style: str = DEFAULT_STYLE
) -> list[Message]:
    """The grounding check: the responder prompt with the documents replaced by 'Empty' (never
    grounded: there is no sentence to quote)."""
    return responder_messages(task, None, question, options, style=style)


def verifier_messages(
    task: str,
    question: str,
    answer: str | None,
    reference: str,
    options: Mapping[str, str] | None = None,
    *,
    structured: bool = False,
    style: str = DEFAULT_STYLE,
    grounded: bool = False,
) -> list[Message]:
    """The verifier's prompt: the question, the responder's extracted answer and the reference
    answer; no documents. It judges whether the two answers mean the same thing. `grounded`: a
    short prompt whose whole reply is YES or NO."""
    _check_task(task)
    if grounded:
        return _user(_grounded(style).grounded_verifier(task, question, options, answer, reference))
    return _user(style_module(style).verifier(task, question, options, answer, reference, structured=structured))


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
