"""webapp/runs/alarms.py: each health alarm on hand-made metric windows, and its absence."""

from __future__ import annotations

from webapp.runs import alarms


def series(name, values, start=1):
    return {name: [(start + i, v) for i, v in enumerate(values)]}


def codes(s):
    return [a["code"] for a in alarms.evaluate(s)]


def test_it_raises_nothing_on_healthy_metrics():
    s = {**series("responder.truncated_rate", [0.1] * 10), **series("responder.keep_ratio", [0.6] * 10),
         **series("verifier.yes_rate", [0.5] * 10), **series("questioner.format_error", [1] * 10),
         **series("questioner.samples", [8] * 10), **series("reward.responder", [0.1 * (i % 5) for i in range(20)])}

    assert alarms.evaluate(s) == []


def test_it_waits_for_min_steps():
    assert alarms.evaluate(series("responder.truncated_rate", [1.0, 1.0])) == []


def test_it_raises_truncation_on_the_window_mean():
    # older points are outside the 10-step window: mean of the last 10 = (6*0.8 + 4*0.3) / 10 = 0.6
    s = series("responder.truncated_rate", [0.0] * 5 + [0.8] * 6 + [0.3] * 4)

    [alarm] = alarms.evaluate(s)

    assert alarm["code"] == "truncated" and alarm["value"] == 0.6 and alarm["steps"] == [6, 15]
    assert "60% of responses hit the token limit over the last 10 steps (6-15)" in alarm["message"]
    assert "sampling.max_response_tokens" in alarm["message"]


def test_it_does_not_raise_truncation_at_exactly_the_threshold():
    assert codes(series("responder.truncated_rate", [0.5] * 10)) == []


def test_it_raises_no_variance_and_says_which_way():
    s = {**series("responder.keep_ratio", [0.0, 0.1, 0.05, None]), **series("questioner.all_solved", [3, 4, 2]),
         **series("questioner.none_solved", [1, 0, 0])}

    [alarm] = alarms.evaluate(s)

    assert alarm["code"] == "no_variance" and alarm["value"] == 0.05  # None skipped: (0 + .1 + .05) / 3
    assert "Only 5% of responder groups" in alarm["message"]
    assert "too easy" in alarm["message"] and "9 groups against 1" in alarm["message"]


def test_it_raises_verifier_yes_with_the_rule_agreement():
    s = {**series("verifier.yes_rate", [0.96, 1.0, 0.98]), **series("verifier.agreement_with_rule", [0.5, 0.6, 0.7])}

    [alarm] = alarms.evaluate(s)

    assert alarm["code"] == "verifier_yes" and alarm["value"] == 0.98
    assert "YES to 98%" in alarm["message"] and "rule score on 60%" in alarm["message"]
    assert codes(series("verifier.yes_rate", [0.95] * 5)) == []


def test_it_raises_questioner_format_errors_from_counts():
    # 12 errors of 20 samples over the window = 60%
    s = {**series("questioner.format_error", [4, 4, 4]), **series("questioner.samples", [8, 6, 6])}

    [alarm] = alarms.evaluate(s)

    assert alarm["code"] == "questioner_format" and alarm["value"] == 0.6
    assert alarm["message"].startswith("60% of the questioner's outputs over the last 3 steps (1-3)")


def test_it_falls_back_to_the_parse_rate():
    [alarm] = alarms.evaluate(series("questioner.parse_rate", [0.2, 0.4, 0.3]))

    assert alarm["code"] == "questioner_format" and alarm["value"] == 0.7


def test_it_raises_flat_rewards_only_after_flat_steps():
    flat = [0.5, 0.505, 0.499] * 7  # 21 values, range 0.006 < 0.01

    assert codes(series("reward.responder", flat[:19])) == []
    [alarm] = alarms.evaluate({**series("reward.responder", flat), **series("reward.questioner", [0.1, 0.3] * 10)})
    assert alarm["code"] == "flat_rewards" and alarm["value"] == 0.006 and alarm["steps"] == [2, 21]
    assert "responder reward stayed at 0.50" in alarm["message"] and "questioner" not in alarm["message"].split("(")[0]
    assert codes(series("reward.responder", [0.5] * 19 + [0.6])) == []


def test_it_names_both_rewards_when_both_are_flat():
    [alarm] = alarms.evaluate({**series("reward.responder", [0.0] * 20), **series("reward.questioner", [-1.0] * 20)})

    assert "responder reward stayed at 0.00 and questioner reward stayed at -1.00" in alarm["message"]


def test_it_raises_several_alarms_in_rule_order():
    s = {**series("verifier.yes_rate", [1.0] * 3), **series("responder.truncated_rate", [0.9] * 3)}

    assert codes(s) == ["truncated", "verifier_yes"]


def test_it_raises_low_question_quality_only_after_five_steps_in_a_row():
    assert codes(series("questioner.question_quality", [0.2] * 4)) == []
    # one good step inside the streak: no alarm
    assert codes(series("questioner.question_quality", [0.2, 0.2, 0.6, 0.2, 0.2])) == []
    (a,) = alarms.evaluate(series("questioner.question_quality", [0.9, 0.1, 0.3, 0.2, 0.4, 0.0]))
    assert a["code"] == "question_quality" and a["value"] == 0.2 and a["steps"] == [2, 6]
    assert "20%" in a["message"] and "question_quality_filter" in a["message"]
    assert codes(series("questioner.question_quality", [0.5] * 5)) == []  # at the threshold: fine


def test_it_raises_verifier_disagreement_over_five_steps():
    (a,) = alarms.evaluate(series("verifier.agreement_with_rule", [0.4, 0.0, 0.25, 0.1, 0.25]))
    assert a["code"] == "verifier_agreement" and a["value"] == 0.2 and "verifier_tasks" in a["message"]
    # steps where nothing was judged (None) do not count toward the streak
    assert codes(series("verifier.agreement_with_rule", [0.1, None, 0.1, 0.1, 0.1])) == []


def test_it_raises_steps_without_questions():
    assert codes(series("questioner.samples", [3, 0, 0, 0, 0])) == []
    (a,) = alarms.evaluate(series("questioner.samples", [3, 0, 0, 0, 0, 0]))
    assert a["code"] == "no_questions" and a["steps"] == [2, 6] and "memory.overflow" in a["message"]
