import math

import pytest

from spell.advantages import EPS, group_zscore, per_key_zscore, population_std, questioner_advantages


def test_group_zscore_hand_computed_population_std():
    # rewards [1, 0, 0, 1, 1, 1, 0, 1]: mean 5/8 = 0.625
    # population variance = 0.625 * 0.375 = 0.234375, std = 0.484123
    rewards = [1, 0, 0, 1, 1, 1, 0, 1]
    std = math.sqrt(0.234375)
    assert population_std(rewards) == pytest.approx(std)
    adv = group_zscore(rewards)
    assert adv[0] == pytest.approx(0.375 / (std + EPS))  # 0.774595
    assert adv[1] == pytest.approx(-0.625 / (std + EPS))  # -1.290994
    assert adv[0] == pytest.approx(0.774595, abs=1e-5)
    assert sum(adv) == pytest.approx(0.0, abs=1e-9)


def test_population_not_sample_std():
    # [0, 1]: population std 0.5 (sample std would be 0.7071)
    assert group_zscore([0.0, 1.0]) == pytest.approx([-1.0, 1.0], abs=1e-5)


def test_constant_group_has_zero_advantage():
    assert group_zscore([1.0, 1.0, 1.0]) == [0.0, 0.0, 0.0]
    assert group_zscore([]) == []


def test_questioner_zscore_per_task():
    rewards = [1.0, 0.0, -1.0, 0.5, 0.5, 0.3]
    tasks = ["doc_mc", "doc_mc", "doc_mc", "docmath_qa", "docmath_qa", "doc_general_qa"]
    adv = questioner_advantages(rewards, tasks)
    # doc_mc [1, 0, -1]: mean 0, population std sqrt(2/3) = 0.816497
    s = math.sqrt(2 / 3)
    assert adv[:3] == pytest.approx([1 / (s + EPS), 0.0, -1 / (s + EPS)])
    assert adv[3:5] == [0.0, 0.0]  # constant within the task
    assert adv[5] == 0.0  # a lone sample
    assert per_key_zscore([1.0, 2.0], [0, 0]) == pytest.approx([-1.0, 1.0], abs=1e-5)
    with pytest.raises(ValueError):
        per_key_zscore([1.0], [])


def test_all_format_errors_give_zero_signal():
    # the failure mode the structured-output switch exists for
    assert questioner_advantages([-1.0] * 8, ["doc_mc"] * 8) == [0.0] * 8
