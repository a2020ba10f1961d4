"""Role prompts worded after the SPELL release's (the `release` style, paper-7b).

Our own wording of the release's templates (SPELL/verl/verl/utils/dataset/prompts.py): the same
sections and rules, in the same order, shorter sentences. What carries over, per role:
- questioner: an expert building a benchmark; numbered design principles per task (English,
  standalone questions that never refer to "Document 1" / "Article 2", multi-hop over ALL the
  documents, a short or single non-zero numeric answer, what to avoid, a cited derivation); the
  record as a fenced json block after the reasoning; the documents between <text> and </text>,
  unlabelled; with memory, ONE new, significantly harder question, the reasoning types that make it
  harder, and the examples after the documents;
- responder: the text between <text> and </text>, the question, and the answer's last sentence
  ("The correct answer is ...", "Therefore, the answer is ..."), step by step for DocMath;
- verifier: compare two answers WITHOUT solving the problem, identical value or meaning in any
  notation, a 0.15% tolerance for numbers, an explanation and then [[YES]] or [[NO]].
"""

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

_STANDALONE_RULE = (
    "the question must make sense on its own. Never refer to the documents by position or label "
    '("Document 1", "Article 2", "the second text"): a reader sees them unnumbered.'
)
_STANDALONE = "**Standalone**: " + _STANDALONE_RULE

_INTRO = {
    "doc_general_qa": (
        "You are an expert in document analysis. We are building a benchmark that tests large "
        "language models on fact retrieval, reasoning over several constraints and accurate "
        "synthesis of information. Your task is to propose {one} question about the documents "
        "between <text> and </text>{than_examples}. Answering it must need both document "
        "comprehension and multi-hop reasoning. Give the correct answer and a detailed step-by-step "
        "derivation of how it follows from the documents."
    ),
    "doc_mc": (
        "You are an expert in document analysis. We are building a benchmark that tests large "
        "language models on fact retrieval, reasoning over several constraints and accurate "
        "synthesis of information. Your task is to write {one} multiple-choice question about the "
        "documents between <text> and </text>{than_examples}, with one correct option and three "
        "plausible, distinct distractors. Answering it must need document comprehension and "
        "multi-hop reasoning. Explain in detail why the correct option is right (with its "
        "derivation) and why each distractor is wrong."
    ),
    "docmath_qa": (
        "You are an expert in document analysis and numerical reasoning. We are building a "
        "benchmark that tests the numerical reasoning of large language models on specialised "
        "documents with text and tables. Your task is to propose {one} question about the "
        "documents between <text> and </text>{than_examples}. Answering it must need document "
        "comprehension and multi-step calculation, and lead to a single, non-zero number. Give the "
        "correct number and a detailed step-by-step derivation of how it follows from the documents."
    ),
}

_PRINCIPLES = {
    "doc_general_qa": [
        "**Language**: the question, the answer and the derivation are in English.",
        _STANDALONE,
        "**One answer**: the question has a single, clear, factual answer.",
        "**Multi-hop**: answering needs information from ALL the documents shown; no single "
        "document contains the answer.",
        "**Phrasing**: integrate the documents naturally. Start with a question word (What, How, "
        "Where, When) and link constraints from different documents with connectors such as 'in "
        "relation to', 'given the condition of', 'as a result of', 'which also affects', 'in "
        "addition to'.",
        "**Answer and derivation**: the answer is a concise phrase of at most 20 tokens. The "
        "derivation is a step-by-step chain; each step cites the data point or phrase it uses and "
        "where it comes from (\"the table row 'Revenue', year 2023 ...\", \"the paragraph on ...\").",
    ],
    "doc_mc": [
        "**General**: the question, the options and the explanations are in English. The question "
        "is challenging: more than retrieval or a few inference steps.",
        _STANDALONE,
        "**Complexity**: at least three distinct reasoning or calculation steps; at least three "
        "distinct data points from different parts of the documents (a table with text, several "
        "rows or cells); quantitative data combined with qualitative information; a set-up open "
        "to common misreadings, which the distractors use.",
        "**Validity**: the question and every option are answerable from the documents alone, "
        "with no knowledge beyond common sense (profit = revenue - cost). Numbers need "
        "interpretation in context, not look-up. Ask about material information, not trivia; for "
        "reports, prefer regulatory or significant financial outcomes.",
        "**Distractors**: each of the three wrong options is plausible yet clearly wrong on careful "
        "reading, each follows a distinct error path, and at least one reflects a common conceptual "
        "misunderstanding of the documents.",
        "**Avoid**: counting questions (small counts inside a larger calculation are fine), direct "
        "retrieval from one obvious place, outside or professional knowledge, artificially "
        "convoluted or trick questions, invented facts or hypotheticals, ambiguity, ethical or "
        "subjective judgments, vague options.",
        "**Answer and explanation**: {target}. Give the derivation of the correct option step by "
        "step, citing the parts of the documents used, and for each distractor the error it "
        "represents (a deduction left out, two figures summed instead of subtracted, ...).",
    ],
    "docmath_qa": [
        "**Language**: the question, the answer and the derivation are in English.",
        "**Depth**: the question is challenging, beyond retrieval and a few inference steps. It "
        "needs multi-step calculation (two or more distinct calculation steps) and information "
        "from different parts of the documents (a table with a paragraph, several rows or "
        "columns).",
        "**Avoid**: counting questions (a count of at most 10 inside a larger calculation is "
        "fine); direct retrieval of one isolated value; outside knowledge beyond basic concepts "
        "the documents support (profit = revenue - cost); artificially convoluted or trick "
        "questions; questions with two or more numeric answers (\"the revenues of A and B\").",
        "**Obscurity**: start with a question word (What, How, Where, When). Do not state or "
        "paraphrase the key figures in the question: the solver must find them. Ask about "
        "relationships between data points, not their location.",
        "**Grounding**: everything needed is in the documents or follows from them; no "
        "hypothetical scenarios, invented data or unsupported assumptions. " + _STANDALONE_RULE[0].upper()
        + _STANDALONE_RULE[1:],
        "**Numeric answer**: one single non-zero number. When the documents imply units "
        "(millions of dollars, percent), phrase the question so that the number alone answers it "
        "(\"What is the value in millions of dollars?\").",
        "**Derivation**: step by step, citing the data points used and where they are, with every "
        "operation written out, so that the question is shown to be solvable.",
    ],
}

# With memory: the reasoning types that make a follow-up question harder (the release's lists).
_ESCALATE = {
    "doc_general_qa": [
        "quantitative reasoning and calculation: arithmetic (sums, differences, percentage "
        "change, averages) over data from several documents;",
        "comparative and superlative analysis: comparing several entities on combined criteria "
        "to find the highest, lowest or best;",
        "conditional or causal reasoning: an if-then question, or the cause or effect of a "
        "situation, linking documents (the total cost if one document's discount applied to "
        "another's price);",
        "synthesis across data types: connecting qualitative information (a policy) with "
        "quantitative data (a figure in a table) to reach a conclusion.",
    ],
    "docmath_qa": [
        "period-over-period change: growth, decline or change between periods;",
        "ratio or metric derivation: a financial ratio or metric the documents do not state;",
        "aggregation and filtering: totals over rows, columns or sections chosen by a condition "
        "in the text;",
        "projection or implication: a forward-looking or what-if question answered from the "
        "documents' figures only.",
    ],
}
_ESCALATE["doc_mc"] = _ESCALATE["doc_general_qa"]


def format_documents(documents: Sequence[Document] | None) -> str:
    """The documents one after another, unlabelled (a title, when known, as the first line), as
    the release joins its paragraphs; the word 'Empty' when there are none (grounding)."""
    if not documents:
        return EMPTY_DOCUMENTS
    out = []
    for i, doc in enumerate(documents, 1):
        _, title, text = document_fields(doc, i)
        out.append(f"{title}\n{text}" if title else text)
    return "\n".join(out)


def _output_format(task: str, structured: bool) -> list[str]:
    if structured:
        return [
            "## Output format",
            "Reply with a single JSON object: an optional \"reasoning\" field first (your derivation, "
            f"brief), then the fields {TASK_FORMAT[task]}",
        ]
    return [
        "## Output format",
        "Reason first. Then end your response with the record as a JSON object in a fenced json block:",
        "```json",
        TASK_FORMAT[task],
        "```",
    ]


def questioner(
    task: str, documents: str, memory: Sequence[Mapping[str, Any]], *, structured: bool, target_letter: str | None
) -> str:
    harder = bool(memory)
    intro = _INTRO[task].format(
        one="ONE new, significantly more difficult" if harder else "one challenging",
        than_examples=(
            ", given simpler questions already asked about them; it must be fundamentally "
            "different from and more complex than those examples" if harder else ""
        ),
    )
    target = (
        f"the correct option must be ({target_letter})" if target_letter
        else "put the correct answer under one of the letters A-D"
    )
    principles = [p.format(target=target) if "{target}" in p else p for p in _PRINCIPLES[task]]
    if harder:
        principles.append(
            "**Escalate the difficulty**: the new question needs a higher order of reasoning than "
            "the previous examples. First see which simple patterns they use (a look-up, one "
            "calculation, one comparison); then build the new question on one or more of these "
            "reasoning types:\n" + "\n".join(f"    - {kind}" for kind in _ESCALATE[task])
        )
    parts = [
        intro,
        "",
        "## Principles",
        "Follow these principles for the question, the answer and the derivation:",
        "",
        *[f"{i}. {p}" for i, p in enumerate(principles, 1)],
        "",
        *_output_format(task, structured),
        "",
        "## Documents",
        "<text>",
        documents,
        "</text>",
    ]
    if harder:
        parts += ["", "## Previous examples", examples_text(task, memory)]
    return "\n".join(parts)


def responder(task: str, documents: str, question: str, options: Mapping[str, str] | None) -> str:
    if task == "docmath_qa":
        return "\n".join([
            "You are an expert in document analysis and numerical reasoning. Answer the question "
            "from the text below. First think the problem through step by step, writing down "
            "every necessary step; then give the final answer in your last sentence as "
            f'"Therefore, the answer is {PLACEHOLDER}". The final answer is a number.',
            "",
            "<text>",
            documents,
            "</text>",
            "",
            f"Question: {question}",
            "",
            f'Reason step by step and end with: "Therefore, the answer is {PLACEHOLDER}."',
        ])
    shown = question_text(task, question, options) if task == "doc_mc" else f"Question: {question}"
    return "\n".join([
        "Read the text below and answer the question after it.",
        "",
        "<text>",
        documents,
        "</text>",
        "",
        shown,
        "",
        f'Give your answer in this form: "The correct answer is {PLACEHOLDER}."',
    ])


def verifier(
    task: str, question: str, options: Mapping[str, str] | None, answer: str | None, reference: str, *, structured: bool
) -> str:
    # The release shows the two extracted answers as they are (for MC the two letters) and the
    # question as the responder saw it (for MC with its choices).
    body = [
        "## Task",
        "You are an expert at checking whether two answers are the same. You are given a problem "
        "and two answers, Answer 1 and Answer 2. Decide whether they are equivalent, without "
        "attempting to solve the problem yourself.",
        "",
        "## Instructions",
        "1. Compare Answer 1 and Answer 2 carefully.",
        "2. They are equivalent when they state an identical value or meaning, even when written "
        "in different forms or notations.",
        "3. For numerical answers allow a **0.15% tolerance**.",
        '4. Your decision **must be** one of "[[YES]]" or "[[NO]]".',
        "",
        "## Input",
        f"- Problem: {question_text(task, question, options)}",
        f"- Answer 1: {answer if answer else '(no answer given)'}",
        f"- Answer 2: {reference}",
        "",
        "## Output format",
    ]
    if structured:
        body.append(
            'Reply with a JSON object {"explanation": "<why the answers are or are not '
            'equivalent>", "decision": "YES" or "NO"}.'
        )
    else:
        body += [
            '"Explanation:" why the answers are or are not equivalent.',
            '"Decision:" "[[YES]]" or "[[NO]]"',
        ]
    return "\n".join(body)
