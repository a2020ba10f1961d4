"""Decontamination: training documents that share text with an evaluation set are dropped.

A document is contaminated when it shares at least one word n-gram (n = 13 by default, the GPT-3 /
PaLM convention) with an evaluation item's context, question or reference answers. Words are
lowercased runs of letters and digits, so punctuation, case and whitespace do not hide a copy;
an item text shorter than n words is matched as a whole (its words in a row).

    index = EvalIndex.from_items(items)          # spell.data.evalsets.EvalItem
    index.contaminated(text) -> bool
    kept, dropped = decontaminate(records, items)  # CorpusRecord-like objects with .id and .text
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
