import math

import pytest

from spell.answers import normalize_answer, numbers_match, parse_number
from spell.rewards import (
    is_ungrounded,
    questioner_outcome_reward,
    questioner_reward,
    responder_reward,
    rule_score,
    verifier_agreement,
    verifier_group_eligible,
    verifier_judgment_rewards,
    verifier_majority,
)

# --- questioner reward --------------------------------------------------------------------------


def test_questioner_reward_gaussian_hand_computed():
    # sigma = 1/6: exp(-(rbar-0.5)^2 / (2/36)) = exp(-18 (rbar-0.5)^2)
    assert questioner_reward(0.5) == 1.0
    assert questioner_reward(0.25) == pytest.approx(math.exp(-18 * 0.0625))  # 0.32465
    assert questioner_reward(0.25) == pytest.approx(0.324652, abs=1e-6)
    assert questioner_reward(0.75) == pytest.approx(questioner_reward(0.25))
    assert questioner_reward(0.0) == 0.0
    assert questioner_reward(1.0) == 0.0


def test_questioner_reward_sigma_and_modes():
    # paper ablation sigma = 0.5/2 = 0.25: exp(-(0.25)^2 / (2 * 0.0625)) = exp(-0.5)
    assert questioner_reward(0.25, sigma=0.25) == pytest.approx(math.exp(-0.5))
    assert questioner_reward(0.25, mode="reverse") == 0.75
    assert questioner_reward(0.25, mode="rzero") == 0.5
    assert questioner_reward(0.5, mode="rzero") == 1.0
    for mode in ("gaussian", "reverse", "rzero"):
        assert questioner_reward(0.0, mode=mode) == 0.0
        assert questioner_reward(1.0, mode=mode) == 0.0
    with pytest.raises(ValueError):
        questioner_reward(0.5, mode="cubic")
    with pytest.raises(ValueError):
        questioner_reward(1.5)


def test_questioner_outcome_penalties():
    assert questioner_outcome_reward(valid=False) == -1.0
    assert questioner_outcome_reward(valid=True, grounded=False, rbar=0.5) == -0.5
    assert questioner_outcome_reward(valid=True, grounded=True, rbar=0.5) == 1.0
    assert questioner_outcome_reward(valid=True, rbar=1.0) == 0.0


def test_grounding_threshold():
    assert is_ungrounded(1.0)
    assert is_ungrounded(0.1)
    assert not is_ungrounded(0.0)
    assert not is_ungrounded(0.05)


# --- verifier ------------------------------------------------------------------------------------


def test_majority_paper_rule():
    # [1,1,0,-1,1,1,1,0]: YES = 5 > 8/2 -> 1
    assert verifier_majority([1, 1, 0, -1, 1, 1, 1, 0]) == 1
    # [1,1,0,-1,1,1,0,0]: YES = 4, not > 4 -> 0
    assert verifier_majority([1, 1, 0, -1, 1, 1, 0, 0]) == 0
    # format errors count in G: YES = 3 of G = 4 valid + 4 invalid -> 0 ... 3 > 4 is false
    assert verifier_majority([1, 1, 1, 0, -1, -1, -1, -1]) == 0
    assert verifier_majority([-1, -1, -1]) == -1


def test_majority_release_rule():
    assert verifier_majority([1, 1, 0, -1, -1, -1, 0, 1], rule="release") == 1  # 3 x 1 first
    assert verifier_majority([1, 1, 0, -1, -1, -1, -1, 0], rule="release") == -1
    assert verifier_majority([0, 0, 1], rule="release") == 0


def test_responder_reward_is_max_of_rule_and_verifier():
    assert responder_reward(0.0, 1) == 1.0
    assert responder_reward(1.0, 0) == 1.0
    assert responder_reward(0.0, 0) == 0.0
    assert responder_reward(0.0, -1) == 0.0  # majority a format error: rule only
    assert responder_reward(1.0, None) == 1.0  # verifier skipped
    assert responder_reward(0.0, None) == 0.0


def test_verifier_judgment_rewards():
    assert verifier_judgment_rewards([1, 1, 0, -1], 1) == [1.0, 1.0, 0.0, -1.0]
    assert verifier_judgment_rewards([1, 0], 0) == [0.0, 1.0]


def test_verifier_eligibility():
    six_of_eight = [1, 1, 1, 1, 1, 1, 0, 0]  # agreement 0.75
    assert verifier_agreement(six_of_eight, 1) == 0.75
    assert verifier_group_eligible(six_of_eight, 1, rule=1.0)
    # consistency check: majority YES but the rule says wrong
    assert not verifier_group_eligible(six_of_eight, 1, rule=0.0)
    assert verifier_group_eligible(six_of_eight, 1, rule=0.0, mode="maj")
    # unanimous: no signal
    assert not verifier_group_eligible([1] * 8, 1, rule=1.0)
    # 4 vs 4: majority 0 agreed by 50% < 51%
    assert not verifier_group_eligible([1, 1, 1, 1, 0, 0, 0, 0], 0, rule=0.0)
    # 5 of 8 = 62.5%
    assert verifier_group_eligible([0, 0, 0, 0, 0, 1, 1, 1], 0, rule=0.0)
    # invalid judgments do not count in the agreement: 4 of 7 valid = 57%
    assert verifier_group_eligible([0, 0, 0, 0, 1, 1, 1, -1], 0, rule=0.0)
    # invalid majority
    assert not verifier_group_eligible([-1, -1, 1], -1, rule=0.0)


# --- rule scores ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response, reference, expected",
    [
        ("The correct answer is Paris.", "Paris", 1.0),
        ("The correct answer is **the City of Paris**", "paris", 1.0),  # cover EM
        ("The correct answer is Lyon.", "Paris", 0.0),
        ("The correct answer is (insert answer here)", "insert answer here", 0.0),
        ("The correct answer is ", "Paris", 0.0),
        ("Paris", "Paris", 0.0),  # no "answer is": no answer
        ("The answer is Paris.\nBecause the text says so, maybe London", "London", 0.0),
        ("<think>The answer is Paris</think>The correct answer is Rome", "Paris", 0.0),
        ("<think>The correct answer is Paris", "Paris", 0.0),  # unclosed think
        ("The correct answer is Barack Obama's father", "Barack Obama", 1.0),
    ],
)
def test_rule_score_general_qa(response, reference, expected):
    assert rule_score("doc_general_qa", response, reference) == expected


def test_squad_normalisation():
    assert normalize_answer("  The  Eiffel-Tower, an icon! ") == "eiffeltower icon"


@pytest.mark.parametrize(
    "response, reference, expected",
    [
        ("The correct answer is (B)", "B", 1.0),
        ("The correct answer is B.", "B", 1.0),
        ("The correct answer is: **C**", "C", 1.0),
        ("So the answer is (D)", "D", 1.0),
        ("answer is A", "A", 1.0),
        ("Thus \\boxed{C}", "C", 1.0),
        ("The answer is A... wait, the correct answer is (C)", "C", 1.0),  # last one counts
        ("The answer is A... wait, the correct answer is (C)", "A", 0.0),
        ("The correct answer is (B)", "C", 0.0),
        ("I think it is B", "B", 0.0),
        ("The answer is a tricky one", "A", 0.0),  # the article is not a letter
        ("The correct answer is (B)", "(B)", 1.0),
    ],
)
def test_rule_score_mc(response, reference, expected):
    assert rule_score("doc_mc", response, reference) == expected


@pytest.mark.parametrize(
    "response, reference, expected",
    [
        ("Therefore, the answer is 1,234.5.", "1234.5", 1.0),
        ("Therefore, the answer is $1,234,567.", "1234567", 1.0),
        ("Therefore, the answer is \\$2.5 million.", "2.5", 1.0),
        ("Therefore, the answer is $2.5 million.", "2500000", 1.0),  # scaled by 1e6
        ("Therefore, the answer is 3.2 billion", "3200000000", 1.0),  # 1e9
        ("Therefore, the answer is 45 thousand", "45000", 1.0),  # 1e3
        ("Therefore, the answer is 12.5%.", "0.125", 1.0),  # percent: x100
        ("Therefore, the answer is 0.125", "12.5", 1.0),
        ("Therefore, the answer is 12.5%", "12.5", 1.0),
        ("Therefore, the answer is 100.1", "100", 1.0),  # 0.1% relative error
        ("Therefore, the answer is 100.2", "100", 0.0),  # 0.2% > 0.15%
        ("Therefore, the answer is 1.2341", "1.234", 1.0),
        ("Therefore, the answer is 0.00115", "0.0012", 1.0),  # rounding up to 3 decimals
        ("We get \\boxed{42.0}", "42", 1.0),
        ("The answer is 7 but \\boxed{42}", "42", 1.0),  # boxed wins
        ("\\boxed{\\frac{1}{4}}", "0.25", 1.0),
        ("Therefore, the answer is -5", "-5", 1.0),
        ("Therefore, the answer is \u22125.0", "-5", 1.0),  # unicode minus
        ("Therefore, the answer is -$5", "-5", 1.0),
        # the sign matters
        ("Therefore, the answer is -5", "5", 0.0),
        ("\\boxed{-12.5\\%}", "0.125", 0.0),
        ("Therefore, the answer is 5", "-500", 0.0),
        ("Therefore, the answer is 6", "5", 0.0),
        ("Therefore, the answer is unknown", "5", 0.0),
        ("I computed 5", "5", 0.0),
        ("<think>Therefore, the answer is 5", "5", 0.0),
    ],
)
def test_rule_score_docmath(response, reference, expected):
    assert rule_score("docmath_qa", response, reference) == expected


def test_docmath_reference_may_be_a_number():
    assert rule_score("docmath_qa", "Therefore, the answer is 7.", 7) == 1.0
    assert rule_score("docmath_qa", "Therefore, the answer is 7.", 7.5) == 0.0


@pytest.mark.parametrize(
    "text, value",
    [
        ("1,234.5", 1234.5),
        ("$ 1,234", 1234.0),
        ("USD 3.5 million", 3.5),
        ("12.5%", 12.5),
        ("(12)", 12.0),
        ("-0.5", -0.5),
        ("\u2212 7", -7.0),
        ("1e-3", 0.001),
        ("3/4", 0.75),
        ("\\frac{3}{4}", 0.75),
        ("\\text{RMB}\\,2{,}000", None),
        ("no number", None),
        ("", None),
        ("1/0", 1.0),
    ],
)
def test_parse_number(text, value):
    got = parse_number(text)
    if value is None and text.startswith("\\text"):
        assert got in (None, 2.0, 2000.0)  # odd LaTeX: any reading, never a crash
    else:
        assert got == value


def test_numbers_match_edges():
    assert numbers_match(0.0, 0.0)
    assert not numbers_match(0.0, 5.0)
    assert not numbers_match(float("inf"), 5.0)
    assert numbers_match(-1234.5, -1.2345)  # scaled by 1e3, signs agree
    assert not numbers_match(1234.5, -1.2345)


def test_rule_score_never_raises_on_unknown_input():
    assert rule_score("nope", "The answer is 5", "5") == 0.0
    assert rule_score("docmath_qa", None, "5") == 0.0  # type: ignore[arg-type]
    assert rule_score("doc_mc", "The answer is B", None) == 0.0


def test_the_public_names_stay_importable():
    # Other code (webapp, workers, notebooks) relies on these.
    from spell.config import preset
    from spell.parsing import parse_questioner, parse_verifier
    from spell.rewards import questioner_reward, rule_score

    assert preset("paper-7b").prompts.style == "release"
    assert rule_score("doc_mc", "The correct answer is (B)", "B") == 1.0
    assert questioner_reward(0.5) == 1.0
    assert parse_questioner("doc_general_qa", '```json\n{"question": "Q?", "answer": "A"}\n```').ok
    assert parse_verifier("[[YES]]") == 1
