"""Advantages (SPELL.md, "Advantages").

Responder and verifier: (r - mean) / (std + 1e-6) within each group of G. Questioner: its reward
z-scored across the batch's questioner samples of the same task.

`std` is the UNBIASED standard deviation by default (divide by n - 1: torch.std, what the
release's verl computes), or the population one (divide by n) with `unbiased=False`. The unbiased
std of a single value is undefined (torch gives NaN); here it is 0, so a group of one gets
advantage 0, like any constant group.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Hashable, Sequence

EPS = 1e-6


def population_std(values: Sequence[float]) -> float:
    n = len(values)
    if n == 0:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / n)


def sample_std(values: Sequence[float]) -> float:
    """The unbiased (n - 1) standard deviation; 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def group_zscore(rewards: Sequence[float], eps: float = EPS, *, unbiased: bool = True) -> list[float]:
    """(r - mean) / (std + eps) over one group; all zeros for a constant group."""
    if not rewards:
        return []
    mean = sum(rewards) / len(rewards)
    std = sample_std(rewards) if unbiased else population_std(rewards)
    return [(r - mean) / (std + eps) for r in rewards]


def per_key_zscore(
    rewards: Sequence[float], keys: Sequence[Hashable], eps: float = EPS, *, unbiased: bool = True
) -> list[float]:
    """z-score each reward among those with the same key (e.g. the task), order kept."""
    if len(rewards) != len(keys):
        raise ValueError("rewards and keys differ in length")
    by_key: dict[Hashable, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        by_key[k].append(i)
    out = [0.0] * len(rewards)
    for idx in by_key.values():
        for i, a in zip(idx, group_zscore([rewards[i] for i in idx], eps, unbiased=unbiased)):
            out[i] = a
    return out


def questioner_advantages(
    rewards: Sequence[float], tasks: Sequence[str], eps: float = EPS, *, unbiased: bool = True
) -> list[float]:
    """The questioner's advantages: rewards z-scored per task across the batch."""
    return per_key_zscore(rewards, tasks, eps, unbiased=unbiased)
