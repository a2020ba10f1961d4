"""Short role prompts for small models (the `small` style, cpu-demo): numbered documents, a task
brief of a few lines, one instruction for the record or the answer's last sentence."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from spell.prompt_styles.common import (
    EMPTY_DOCUMENTS,
    PLACEHOLDER,
    TASK_FORMAT,
    Document,
    document_fields,
    examples_text,
    question_text,
)

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

_ANSWER_ENDING = {
    "doc_general_qa": f'End your response with: "The correct answer is {PLACEHOLDER}".',
    "doc_mc": 'End your response with: "The correct answer is (X)", where X is A, B, C or D.',
    "docmath_qa": (
        'End your response with: "Therefore, the answer is X", where X is a single number '
        "(no units or words)."
    ),
}


def format_documents(documents: Sequence[Document] | None) -> str:
    """"Document N (title):" blocks, N being each document's number in its cluster; the word
    'Empty' when there are none (the grounding check)."""
    if not documents:
        return EMPTY_DOCUMENTS
    parts = []
    for i, doc in enumerate(documents, 1):
        number, title, text = document_fields(doc, i)
        head = f"Document {number}" + (f" ({title})" if title else "")
        parts.append(f"{head}:\n{text}")
    return "\n\n".join(parts)


# Grounded records (structured.grounded, spell/grounded.py): what to write, and a worked example
# about a text unlike any corpus, so copying it is easy to catch (spell/quality.py: off_topic).
_GROUNDED_BRIEF = {
    "doc_general_qa": (
        "Choose one sentence of the documents that states a fact: a name, a date or a number. "
        "Copy it after \"Evidence:\". Then ask a question that this sentence answers, using its "
        "words, and give the answer: the name, date or number, copied from the sentence."
    ),
    "doc_mc": (
        "Choose one sentence of the documents that states a fact: a name, a date or a number. "
        "Copy it after \"Evidence:\". Then ask a question that this sentence answers, using its "
        "words; give the right answer, copied from the sentence, and three wrong answers: other "
        "names, dates or numbers of the same kind from the documents."
    ),
    "docmath_qa": (
        "Choose one sentence or table row of the documents that states numbers. Copy it after "
        "\"Evidence:\". Then ask a question that needs a calculation with those numbers (a "
        "difference, a sum, a ratio or a percentage change), and give the answer as one number."
    ),
}
_GROUNDED_EXAMPLE = {
    "doc_general_qa": (
        "Evidence: The lighthouse at Cape Morrow was built in 1871 by the engineer Ada Pell.\n"
        "Question: Who built the lighthouse at Cape Morrow?\n"
        "Answer: Ada Pell"
    ),
    "doc_mc": (
        "Evidence: The lighthouse at Cape Morrow was built in 1871 by the engineer Ada Pell.\n"
        "Question: Who built the lighthouse at Cape Morrow?\n"
        "Answer: Ada Pell\nWrong: Tomas Reed\nWrong: Hugo Marsh\nWrong: Ilse Varga"
    ),
    "docmath_qa": (
        "Evidence: The ferry carried 12,400 passengers in 2030 and 9,300 in 2031.\n"
        "Question: How many fewer passengers did the ferry carry in 2031 than in 2030?\n"
        "Answer: 3100"
    ),
}
# Cloze questions (structured.cloze_questions): the question blanks the fact in the evidence sentence.
_CLOZE_BRIEF = {
    "doc_general_qa": (
        "Choose one sentence of the documents that states a fact: a name, a date or a number. "
        "Copy it after \"Evidence:\". Then ask which name, year, date or number completes the sentence, "
        "quoting its words with ___ in place of the fact, and give the answer copied from the sentence."
    ),
    "doc_mc": (
        "Choose one sentence of the documents that states a fact: a name, a date or a number. "
        "Copy it after \"Evidence:\". Then ask which name, year, date or number completes the sentence, "
        "quoting its words with ___ in place of the fact; give the right answer, copied from the "
        "sentence, and three different wrong answers: other names, dates or numbers of the same kind "
        "from the documents."
    ),
    "docmath_qa": (
        "Choose one sentence or table row of the documents that states two numbers of one kind. "
        "Copy it after \"Evidence:\". Then ask by how much the two numbers differ, or what they add "
        "up to, quoting its words with ___ in place of each number, and give the result as one number."
    ),
}
_CLOZE_EXAMPLE = {
    "doc_general_qa": (
        "Evidence: The lighthouse at Cape Morrow was built in 1871 by the engineer Ada Pell.\n"
        "Question: Which name completes \"Morrow was built in 1871 by the engineer ___\"?\n"
        "Answer: Ada Pell"
    ),
    "doc_mc": (
        "Evidence: The lighthouse at Cape Morrow was built in 1871 by the engineer Ada Pell.\n"
        "Question: Which name completes \"Morrow was built in 1871 by the engineer ___\"?\n"
        "Answer: Ada Pell\nWrong: Tomas Reed\nWrong: Hugo Marsh\nWrong: Ilse Varga"
    ),
    "docmath_qa": (
        "Evidence: The ferry carried 12,400 passengers in 2030 and 9,300 in 2031.\n"
        "Question: By how much do the two ___ differ in \"The ferry carried ___ passengers in 2030 and ___ in 2031\"?\n"
        "Answer: 3100"
    ),
}
_GROUNDED_ENDING = {
    "doc_general_qa": 'Then write: "The correct answer is <answer>", the answer copied from the documents.',
    "doc_mc": 'Then write: "The correct answer is (X)", where X is the letter A, B, C or D of the right choice.',
    "docmath_qa": 'Then write: "The correct answer is <number>", one number (no units or words).',
}


_ONE_LINE_ANSWER = {
    "doc_general_qa": 'Answer in one line: "The correct answer is <answer>", the answer copied from the documents.',
    "doc_mc": 'Answer in one line: "The correct answer is (X)", where X is the letter A, B, C or D of the right choice.',
    "docmath_qa": 'Answer in one line: "The correct answer is <number>", one number (no units or words).',
}


def grounded_questioner(task: str, documents: str, memory: Sequence[Mapping[str, Any]], cloze: bool = False) -> str:
    """The questioner's prompt for a grounded record: Evidence / Question / Answer (/ Wrong) lines;
    `cloze`: the question is the evidence sentence's cloze (DocMath: two numbers blanked, their
    difference or sum asked)."""
    cloze = cloze and task in _CLOZE_BRIEF
    parts = [
        "Read the documents, then write one exam question about them.",
        "",
        "<documents>",
        documents,
        "</documents>",
        "",
        (_CLOZE_BRIEF if cloze else _GROUNDED_BRIEF)[task],
        "",
        "Example, about another text:",
        (_CLOZE_EXAMPLE if cloze else _GROUNDED_EXAMPLE)[task],
    ]
    if memory:
        parts += [
            "",
            "Questions already asked about these documents:",
            "",
            examples_text(task, memory),
            "",
            "Ask a different question: about another sentence, or one that needs a fact from a "
            "second document too.",
        ]
    parts += ["", "Now write yours, about the documents above."]
    return "\n".join(parts)


def questioner(
    task: str, documents: str, memory: Sequence[Mapping[str, Any]], *, structured: bool, target_letter: str | None
) -> str:
    parts = [
        "You write exam questions that test careful reading of long documents.",
        "",
        "<documents>",
        documents,
        "</documents>",
        "",
        "Task: " + _TASK_BRIEF[task],
    ]
    if memory:
        parts += [
            "",
            "Questions already asked about these documents (with their answers):",
            "",
            examples_text(task, memory),
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
            f"then the fields {TASK_FORMAT[task]}",
        ]
    else:
        parts += [
            "",
            "First reason step by step about which facts to combine. Then give the result as a "
            "fenced json block:",
            "```json",
            TASK_FORMAT[task],
            "```",
        ]
    return "\n".join(parts)


def grounded_responder(task: str, documents: str, question: str, options: Mapping[str, str] | None) -> str:
    """The responder's prompt for a one-line answer (its grammar is the answer line alone: quoting
    the evidence first cost 5x the tokens and did not answer better on the held-out sets)."""
    return "\n".join([
            "Read the documents and answer the question.",
            "",
            "<documents>",
            documents,
            "</documents>",
            "",
            question_text(task, question, options),
            "",
            _ONE_LINE_ANSWER[task],
        ])


def responder(task: str, documents: str, question: str, options: Mapping[str, str] | None) -> str:
    return "\n".join([
        "Read the documents and answer the question.",
        "",
        "<documents>",
        documents,
        "</documents>",
        "",
        question_text(task, question, options),
        "",
        "Think step by step, citing the facts you use. " + _ANSWER_ENDING[task],
    ])


def _shown_answers(task: str, options: Mapping[str, str] | None, answer: str | None, reference: str) -> tuple[str, str]:
    ref = reference
    if task == "doc_mc" and options and reference in options:
        ref = f"({reference}) {options[reference]}"
    return (answer if answer else "(no answer given)"), ref


def grounded_verifier(task: str, question: str, options: Mapping[str, str] | None, answer: str | None, reference: str) -> str:
    """A short verifier prompt whose whole reply is YES or NO."""
    shown, ref = _shown_answers(task, options, answer, reference)
    return "\n".join([
        f"Question: {question_text(task, question, options)}",
        f"Reference answer: {ref}",
        f"Candidate answer: {shown}",
        "",
        "Does the candidate answer say the same as the reference answer (the same name, date, "
        "number or choice)? Reply YES or NO.",
    ])


def verifier(
    task: str, question: str, options: Mapping[str, str] | None, answer: str | None, reference: str, *, structured: bool
) -> str:
    shown, ref = _shown_answers(task, options, answer, reference)
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
    return "\n".join(body)
