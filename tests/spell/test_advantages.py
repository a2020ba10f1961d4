import math

import pytest

from spell.advantages import (
    EPS,
    group_zscore,
    per_key_zscore,
    population_std,
    questioner_advantages,
    sample_std,
)


def test_group_zscore_hand_computed_unbiased_std():
    # rewards [1, 0, 0, 1, 1, 1, 0, 1]: mean 5/8 = 0.625, squared deviations sum to
    # 5 x 0.375^2 + 3 x 0.625^2 = 0.703125 + 1.171875 = 1.875
    # unbiased variance 1.875 / 7 = 0.267857, std = 0.517549 (torch.std, the release's)
    rewards = [1, 0, 0, 1, 1, 1, 0, 1]
    std = math.sqrt(1.875 / 7)
    assert sample_std(rewards) == pytest.approx(std)
    adv = group_zscore(rewards)
    assert adv[0] == pytest.approx(0.375 / (std + EPS))  # 0.724568
    assert adv[1] == pytest.approx(-0.625 / (std + EPS))  # -1.207614
    assert adv[0] == pytest.approx(0.724568, abs=1e-5)
    assert sum(adv) == pytest.approx(0.0, abs=1e-9)


def test_group_zscore_hand_computed_population_std():
    # the same rewards, population variance 1.875 / 8 = 0.234375, std = 0.484123
    rewards = [1, 0, 0, 1, 1, 1, 0, 1]
    std = math.sqrt(0.234375)
    assert population_std(rewards) == pytest.approx(std)
    adv = group_zscore(rewards, unbiased=False)
    assert adv[0] == pytest.approx(0.375 / (std + EPS))  # 0.774595
    assert adv[0] == pytest.approx(0.774595, abs=1e-5)


def test_two_values_unbiased_vs_population():
    # [0, 1]: population std 0.5 -> +-1; sample std sqrt(0.5) = 0.707107 -> +-0.707107
    assert group_zscore([0.0, 1.0], unbiased=False) == pytest.approx([-1.0, 1.0], abs=1e-5)
    assert group_zscore([0.0, 1.0]) == pytest.approx([-0.707107, 0.707107], abs=1e-5)


def test_constant_group_and_a_lone_value_have_zero_advantage():
    assert group_zscore([1.0, 1.0, 1.0]) == [0.0, 0.0, 0.0]
    assert group_zscore([]) == []
    # torch.std of one value is NaN; here the lone value is its own mean: advantage 0
    assert sample_std([0.7]) == 0.0
    assert group_zscore([0.7]) == [0.0]


def test_questioner_zscore_per_task():
    rewards = [1.0, 0.0, -1.0, 0.5, 0.5, 0.3]
    tasks = ["doc_mc", "doc_mc", "doc_mc", "docmath_qa", "docmath_qa", "doc_general_qa"]
    adv = questioner_advantages(rewards, tasks)
    # doc_mc [1, 0, -1]: mean 0, unbiased std sqrt(2 / 2) = 1
    assert adv[:3] == pytest.approx([1 / (1 + EPS), 0.0, -1 / (1 + EPS)])
    assert adv[3:5] == [0.0, 0.0]  # constant within the task
    assert adv[5] == 0.0  # a lone sample
    # population: std sqrt(2/3) = 0.816497
    s = math.sqrt(2 / 3)
    pop = questioner_advantages(rewards, tasks, unbiased=False)
    assert pop[:3] == pytest.approx([1 / (s + EPS), 0.0, -1 / (s + EPS)])
    assert per_key_zscore([1.0, 2.0], [0, 0], unbiased=False) == pytest.approx([-1.0, 1.0], abs=1e-5)
    with pytest.raises(ValueError):
        per_key_zscore([1.0], [])


def test_all_format_errors_give_zero_signal():
    # the failure mode the structured-output switch exists for
    assert questioner_advantages([-1.0] * 8, ["doc_mc"] * 8) == [0.0] * 8
