"""Small statistics for evaluation curves: the paired bootstrap of a change in mean score.

Two evaluations of the same items (step 0 and step N) are paired: each item's score (its mean over
k samples) before and after. The change in the set's mean@k and its 95% interval come from
resampling items with replacement, the same items for both sides, so the interval reflects the
item-to-item variation of the difference, not of each mean alone.

    paired_bootstrap([0.25, 0.5, 0.0], [0.5, 0.75, 0.25]) -> Change(delta=0.25, low=..., high=...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Change:
    delta: float  # mean(after) - mean(before)
    low: float  # the interval's bounds (2.5% and 97.5% quantiles of the resampled deltas)
    high: float
    items: int

    def as_dict(self) -> dict[str, float | int]:
        return {"delta": self.delta, "low": self.low, "high": self.high, "items": self.items}


def paired_bootstrap(
    before: Sequence[float], after: Sequence[float], *, resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> Change:
    """The change in mean from `before` to `after` (per-item scores, the same items in the same
    order) with a percentile bootstrap interval at `level`."""
    if len(before) != len(after):
        raise ValueError(f"paired scores need the same items: {len(before)} vs {len(after)}")
    n = len(before)
    if n == 0:
        raise ValueError("no items")
    import numpy as np

    diffs = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], method="lower")
    return Change(float(diffs.mean()), float(low), float(high), n)
