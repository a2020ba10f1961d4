"""The paired bootstrap (spell/stats.py) on hand-checked cases."""

from __future__ import annotations

import pytest

from spell.stats import paired_bootstrap


def test_identical_changes_have_a_point_interval():
    change = paired_bootstrap([0.0, 0.25, 0.5, 0.25], [0.25, 0.5, 0.75, 0.5])

    assert (change.delta, change.low, change.high, change.items) == (0.25, 0.25, 0.25, 4)


def test_the_interval_brackets_the_change_and_shrinks_with_more_items():
    before = [0.0, 1.0] * 20
    after = [1.0, 1.0] * 20  # half the items gain 1, half stay: delta 0.5
    small = paired_bootstrap(before, after, seed=1)
    large = paired_bootstrap(before * 10, after * 10, seed=1)

    assert small.delta == pytest.approx(0.5) and large.delta == pytest.approx(0.5)
    assert small.low < 0.5 < small.high
    assert (large.high - large.low) < (small.high - small.low) / 2  # ~1/sqrt(10) as wide
    assert 0.3 < small.low and small.high < 0.7  # sd of the mean: 0.5/sqrt(40) = 0.079


def test_no_change_straddles_zero_and_bad_input_is_refused():
    change = paired_bootstrap([0.0, 1.0, 0.5, 0.5], [1.0, 0.0, 0.5, 0.5], seed=3)
    assert change.delta == 0.0 and change.low < 0.0 < change.high
    with pytest.raises(ValueError):
        paired_bootstrap([0.1], [0.1, 0.2])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])
