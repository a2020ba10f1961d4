"""How far the verifier agrees with people: pure functions, no Django.

Positive class = "equivalent" (the verifier's YES). Human truth per item is the majority of its
non-`unsure` labels; ties and all-`unsure` items have no truth and are counted apart.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

EQUIVALENT = "equivalent"
NOT_EQUIVALENT = "not_equivalent"
UNSURE = "unsure"
LABELS = (EQUIVALENT, NOT_EQUIVALENT, UNSURE)


def human_truth(labels: Iterable[str]) -> bool | None:
    """True (equivalent), False (not equivalent), or None (no labels, all unsure, or a tie)."""
    counts = Counter(label for label in labels if label != UNSURE)
    yes, no = counts[EQUIVALENT], counts[NOT_EQUIVALENT]
    if yes == no:
        return None
    return yes > no


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> Interval:
    """Wilson score interval for a proportion (95% by default); empty for zero trials."""
    if trials == 0:
        return Interval(None, None, None)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Confusion:
    """Verifier (prediction) against human truth (actual)."""

    tp: int = 0  # verifier YES, humans equivalent
    fp: int = 0  # verifier YES, humans not equivalent: a false accept
    tn: int = 0  # verifier NO, humans not equivalent
    fn: int = 0  # verifier NO, humans equivalent

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bool, bool]]) -> "Confusion":
        """`pairs` of (verifier_yes, human_equivalent)."""
        counts = Counter(pairs)
        return cls(tp=counts[(True, True)], fp=counts[(True, False)], tn=counts[(False, False)], fn=counts[(False, True)])

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def accuracy(self) -> Interval:
        return wilson_interval(self.tp + self.tn, self.total)

    def precision(self) -> Interval:
        return wilson_interval(self.tp, self.tp + self.fp)

    def recall(self) -> Interval:
        return wilson_interval(self.tp, self.tp + self.fn)

    def false_accept_rate(self) -> Interval:
        """Share of the answers people judged not equivalent that the verifier accepted."""
        return wilson_interval(self.fp, self.fp + self.tn)

    def as_dict(self) -> dict:
        def pack(interval: Interval) -> dict:
            return {"value": interval.value, "low": interval.low, "high": interval.high}

        return {
            "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn, "n": self.total,
            "accuracy": pack(self.accuracy()), "precision": pack(self.precision()),
            "recall": pack(self.recall()), "false_accept_rate": pack(self.false_accept_rate()),
        }


def cohens_kappa(pairs: Sequence[tuple[str, str]], categories: Sequence[str] = LABELS) -> float | None:
    """Cohen's kappa between two annotators over items both labelled.

    None when there is nothing to compare or chance agreement is already perfect (kappa undefined).
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in categories) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)
