"""Decontamination: training documents that share text with an evaluation set are dropped.

A document is contaminated when it shares at least one word n-gram (n = 13 by default, the GPT-3 /
PaLM convention) with an evaluation item's context, question or reference answers. Words are
lowercased runs of letters and digits, so punctuation, case and whitespace do not hide a copy;
an item text shorter than n words is matched as a whole (its words in a row).

    index = EvalIndex.from_items(items)          # spell.data.evalsets.EvalItem
    index.contaminated(text) -> bool
    kept, dropped = decontaminate(records, items)  # CorpusRecord-like objects with .id and .text
    launch_report(...) / report_summary(report)   # a run's OUT/decontamination.json and its summary

The issue asked for MinHash-LSH (Jaccard 0.8, as the paper) here; a shared 13-word run is used
instead: it also catches a short question or a paragraph copied into a long document, which a
whole-document Jaccard misses (docs/benchmarks.md measures its recall on planted near-copies).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

N = 13
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _key(gram: Sequence[str]) -> bytes:
    return hashlib.blake2b(" ".join(gram).encode(), digest_size=8).digest()


def ngrams(tokens: Sequence[str], n: int = N) -> set[bytes]:
    if len(tokens) < n:
        return {_key(tokens)} if tokens else set()
    return {_key(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class EvalIndex:
    """The hashed n-grams of a set of evaluation items; short texts (under n words) kept apart,
    by length, so that a document matches them as a run of that many words."""

    n: int = N
    grams: set[bytes] = field(default_factory=set)
    short: dict[int, set[bytes]] = field(default_factory=dict)

    @classmethod
    def from_items(cls, items: Iterable[Any], n: int = N) -> "EvalIndex":
        index = cls(n)
        for item in items:
            texts = [item.context, item.question]
            # MC answers are letters; the options carry the content
            texts += list(item.choices or []) if item.task == "doc_mc" else list(item.answers)
            for text in texts:
                index.add(text)
        return index

    def add(self, text: str) -> None:
        tokens = words(text)
        if len(tokens) >= self.n:
            self.grams |= ngrams(tokens, self.n)
        elif len(tokens) >= 4:  # a shorter text is only distinctive from a few words up
            self.short.setdefault(len(tokens), set()).add(_key(tokens))

    def contaminated(self, text: str) -> bool:
        tokens = words(text)
        if self.grams and any(g in self.grams for g in ngrams(tokens, self.n)):
            return True
        return any(any(g in keys for g in ngrams(tokens, k)) for k, keys in self.short.items() if len(tokens) >= k)


def decontaminate(records: Sequence[Any], items: Iterable[Any], n: int = N) -> tuple[list[Any], list[Any]]:
    """(kept, dropped) records: dropped ones share an n-gram with an item (EvalIndex)."""
    index = EvalIndex.from_items(items, n)
    kept, dropped = [], []
    for record in records:
        (dropped if index.contaminated(record.text) else kept).append(record)
    return kept, dropped


# -- the launch report (OUT/decontamination.json, spell/rundir.py) ---------------------------------

TITLES_KEPT = 50  # titles listed in a report; the ids and the count are always complete


def launch_report(eval_sets: Sequence[str], documents: int, dropped: Sequence[dict],
                  corpus_sha256: str | None = None) -> dict:
    """What a run's corpus snapshot left out: the evaluation sets checked, the documents before the
    check, the ids of those dropped, the titles of the first TITLES_KEPT (the id where a document
    has no title) and the sha256 of the snapshot written (so a reader knows which file it is about).
    `dropped`: corpus records as dicts (id, title, ...)."""
    return {"eval_sets": list(eval_sets), "documents": int(documents), "dropped": [d["id"] for d in dropped],
            "dropped_titles": [d.get("title") or d["id"] for d in dropped[:TITLES_KEPT]],
            **({"corpus_sha256": corpus_sha256} if corpus_sha256 else {})}


def report_summary(report: dict) -> dict:
    """A launch report for provenance and pages: counts and at most TITLES_KEPT titles (reports
    written before titles were kept list ids)."""
    dropped = list(report.get("dropped") or [])
    titles = list(report.get("dropped_titles") or dropped)[:TITLES_KEPT]
    return {"eval_sets": list(report.get("eval_sets") or []), "documents": int(report.get("documents") or 0),
            "dropped": len(dropped), "dropped_titles": titles, "more_dropped": max(0, len(dropped) - len(titles))}
