"""The document excerpt an annotator sees next to a judgment.

The process may report excerpts itself (`extra["excerpts"]`: strings or {"doc_id", "title",
"text"} objects); otherwise the questioner's documents (`extra["doc_ids"]`) are read from the
run's corpus and cut to the window that best matches the reference answer and the question.
"""

from __future__ import annotations

import re

WINDOW = 700  # characters shown per document
MAX_DOCS = 3
WORD = re.compile(r"[\w.%$-]+", re.UNICODE)


def _terms(text: str) -> set[str]:
    return {w.lower().strip(".-") for w in WORD.findall(text or "") if len(w.strip(".-")) > 3}


def best_window(text: str, question: str, reference: str, width: int = WINDOW) -> tuple[str, int]:
    """The `width`-character part of `text` around the reference (if it occurs) or with the most
    question and reference words; returns (excerpt, score)."""
    if len(text) <= width:
        return text, len(_terms(text) & (_terms(question) | _terms(reference)))
    ref = (reference or "").strip()
    if ref:
        at = text.lower().find(ref.lower())
        if at >= 0:
            start = max(0, min(len(text) - width, at - width // 2))
            return _cut(text, start, width), 1000
    wanted = _terms(question) | _terms(reference)
    best, best_score = 0, -1
    for start in range(0, max(1, len(text) - width + 1), width // 4):
        score = len(_terms(text[start:start + width]) & wanted)
        if score > best_score:
            best, best_score = start, score
    return _cut(text, best, width), best_score


def _cut(text: str, start: int, width: int) -> str:
    piece = text[start:start + width]
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(text) else "")


def excerpts_for(sample, corpus_id: int | None) -> list[dict]:
    extra = sample.extra if isinstance(sample.extra, dict) else {}
    given = extra.get("excerpts")
    if isinstance(given, list) and given:
        out = []
        for entry in given[:MAX_DOCS]:
            if isinstance(entry, str):
                out.append({"doc_id": "", "title": "", "text": entry[:WINDOW * 2]})
            elif isinstance(entry, dict):
                out.append({"doc_id": str(entry.get("doc_id", "")), "title": str(entry.get("title", "")),
                            "text": str(entry.get("text", ""))[:WINDOW * 2]})
        return out
    doc_ids = [str(d) for d in extra.get("doc_ids") or [] if isinstance(d, (str, int))][:50]
    if not doc_ids or corpus_id is None:
        return []
    from webapp.corpora.models import Document

    scored = []
    for doc in Document.objects.filter(corpus_id=corpus_id, external_id__in=doc_ids).only("external_id", "title", "text"):
        text, score = best_window(doc.text, sample.question, sample.reference)
        scored.append((score, doc.external_id, {"doc_id": doc.external_id, "title": doc.title, "text": text}))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [entry for _, _, entry in scored[:MAX_DOCS]]
