"""Health alarms of a training run, pure: rules over the latest window of metrics.

Input: `series` = {metric name: [(step, value), ...]} in step order, the newest points of each name
(at least FLAT_STEPS of them for the flat-reward rule; more are ignored). Values that are None (nothing
to average that step) are skipped. Output: the alarms that hold, each a dict with a stable `code`, a
short `title` and a `message` that says what is wrong, how bad, and what to look at.
"""

from __future__ import annotations

from typing import Any, Sequence

WINDOW_STEPS = 10  # the "latest metrics window": rules average the newest this many steps
MIN_STEPS = 3  # fewer steps with a value than this: too early to tell, no alarm
TRUNCATED_SHARE = 0.5  # mean responder.truncated_rate above this: most responses hit the length limit
KEEP_RATIO_MIN = 0.1  # mean responder.keep_ratio below this: almost every group has no reward variance
VERIFIER_YES_MAX = 0.95  # mean verifier.yes_rate above this: the verifier accepts (almost) everything
FORMAT_ERROR_SHARE = 0.5  # questioner format errors / questioner samples above this: they dominate
STREAK_STEPS = 5  # the streak rules below fire when this many newest steps all hold
QUALITY_MIN = 0.5  # questioner.question_quality under this: most records are not real questions
AGREEMENT_MIN = 0.5  # verifier.agreement_with_rule under this: the verifier contradicts the rule
FLAT_STEPS = 20  # the reward rule looks at this many newest steps ...
FLAT_DELTA = 0.01  # ... and calls a reward flat when max - min stays below this

NAMES = ("responder.truncated_rate", "responder.keep_ratio", "questioner.all_solved", "questioner.none_solved",
         "verifier.yes_rate", "verifier.agreement_with_rule", "questioner.format_error", "questioner.samples",
         "questioner.parse_rate", "reward.responder", "reward.questioner", "questioner.question_quality")
FLAT_REWARDS = ("reward.responder", "reward.questioner")
POINTS_NEEDED = max(WINDOW_STEPS, FLAT_STEPS)  # how many newest points per name the caller should load


def _window(series: dict[str, Sequence[tuple[int, float | None]]], name: str, steps: int = WINDOW_STEPS):
    points = [(s, v) for s, v in list(series.get(name) or ())[-steps:] if v is not None]
    return points


def _mean(points) -> float:
    return sum(v for _, v in points) / len(points)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _span(points) -> str:
    first, last = points[0][0], points[-1][0]
    n = len(points)
    return f"the last {n} step{'s' if n != 1 else ''} ({first}-{last})" if first != last else f"step {first}"


def _alarm(code: str, title: str, message: str, value: float, threshold: float, points) -> dict[str, Any]:
    return {"code": code, "level": "warning", "title": title, "message": message, "value": round(value, 4),
            "threshold": threshold, "steps": [points[0][0], points[-1][0]]}


def truncated(series) -> dict | None:
    pts = _window(series, "responder.truncated_rate")
    if len(pts) < MIN_STEPS or (share := _mean(pts)) <= TRUNCATED_SHARE:
        return None
    return _alarm(
        "truncated", "Responses cut at the length limit",
        f"{_pct(share)} of responses hit the token limit over {_span(pts)}: their answers are lost and scored "
        "as wrong. Raise sampling.max_response_tokens or ask the responder for shorter reasoning.",
        share, TRUNCATED_SHARE, pts)


def no_variance(series) -> dict | None:
    pts = _window(series, "responder.keep_ratio")
    if len(pts) < MIN_STEPS or (keep := _mean(pts)) >= KEEP_RATIO_MIN:
        return None
    detail = ""
    solved = [v for _, v in _window(series, "questioner.all_solved") if v is not None]
    failed = [v for _, v in _window(series, "questioner.none_solved") if v is not None]
    if solved or failed:
        a, b = sum(solved), sum(failed)
        if a > b:
            detail = f" Mostly every rollout right ({a:.0f} groups against {b:.0f} all wrong): the questions are too easy."
        elif b > a:
            detail = f" Mostly every rollout wrong ({b:.0f} groups against {a:.0f} all right): the questions are too hard."
    return _alarm(
        "no_variance", "Almost no group has reward variance",
        f"Only {_pct(keep)} of responder groups had rewards that differ between rollouts over {_span(pts)}, "
        f"so almost nothing is left to learn from.{detail}",
        keep, KEEP_RATIO_MIN, pts)


def verifier_yes(series) -> dict | None:
    pts = _window(series, "verifier.yes_rate")
    if len(pts) < MIN_STEPS or (yes := _mean(pts)) <= VERIFIER_YES_MAX:
        return None
    agree = _window(series, "verifier.agreement_with_rule")
    extra = f" Its majority agrees with the rule score on {_pct(_mean(agree))} of answers." if agree else ""
    return _alarm(
        "verifier_yes", "The verifier says YES to almost everything",
        f"The verifier said YES to {_pct(yes)} of the answers it judged over {_span(pts)}: it may be "
        f"accepting wrong answers, which rewards the responder for them.{extra} Check the human review panel.",
        yes, VERIFIER_YES_MAX, pts)


def questioner_format(series) -> dict | None:
    errors = _window(series, "questioner.format_error")
    samples = _window(series, "questioner.samples")
    if len(errors) >= MIN_STEPS and sum(v for _, v in samples) > 0:
        pts, share = errors, sum(v for _, v in errors) / sum(v for _, v in samples)
    else:
        pts = _window(series, "questioner.parse_rate")
        if len(pts) < MIN_STEPS:
            return None
        share = 1.0 - _mean(pts)
    if share <= FORMAT_ERROR_SHARE:
        return None
    return _alarm(
        "questioner_format", "Questioner format errors dominate",
        f"{_pct(share)} of the questioner's outputs over {_span(pts)} could not be parsed into a question: "
        "they earn -1 and teach nothing about the documents. Turn on structured.questioner or check the prompt.",
        share, FORMAT_ERROR_SHARE, pts)


def flat_rewards(series) -> dict | None:
    flat = []
    for name in FLAT_REWARDS:
        pts = _window(series, name, FLAT_STEPS)
        if len(pts) < FLAT_STEPS:
            continue
        values = [v for _, v in pts]
        if max(values) - min(values) < FLAT_DELTA:
            flat.append((name, pts, _mean(pts), max(values) - min(values)))
    if not flat:
        return None
    name, pts, level, delta = flat[0]
    what = " and ".join(f"{n.split('.', 1)[1]} reward stayed at {m:.2f}" for n, _, m, _ in flat)
    return _alarm(
        "flat_rewards", "Rewards flat",
        f"The {what} (moving less than {FLAT_DELTA}) for {_span(pts)}: training is not changing the policy. "
        "Check the learning rate, whether updates run (batch.updated) and the keep ratio.",
        delta, FLAT_DELTA, pts)


def _streak(series, name: str, holds) -> list | None:
    """The newest STREAK_STEPS points of `name` when every one of them holds, else None."""
    pts = _window(series, name, STREAK_STEPS)
    return pts if len(pts) == STREAK_STEPS and all(holds(v) for _, v in pts) else None


def low_question_quality(series) -> dict | None:
    pts = _streak(series, "questioner.question_quality", lambda v: v < QUALITY_MIN)
    if pts is None:
        return None
    share = _mean(pts)
    return _alarm(
        "question_quality", "Most questions are not real questions about the documents",
        f"Only {_pct(share)} of the questioner's records passed the question-quality rule over {_span(pts)} "
        "(a question whose answer is in its documents): read the samples' question_quality reasons. For a small "
        "model turn on structured.grounded (with prompts.style small) and selfplay.question_quality_filter.",
        share, QUALITY_MIN, pts)


def verifier_disagrees(series) -> dict | None:
    pts = _streak(series, "verifier.agreement_with_rule", lambda v: v < AGREEMENT_MIN)
    if pts is None:
        return None
    share = _mean(pts)
    return _alarm(
        "verifier_agreement", "The verifier disagrees with the rule score",
        f"The verifier's majority agreed with the rule score on only {_pct(share)} of answers over {_span(pts)}: "
        "its votes are not a usable reward there. Leave the tasks it cannot judge out of "
        "selfplay.verifier_tasks (their reward is then the rule score) and check the human review panel.",
        share, AGREEMENT_MIN, pts)


def no_questions(series) -> dict | None:
    pts = _streak(series, "questioner.samples", lambda v: v == 0)
    if pts is None:
        return None
    return _alarm(
        "no_questions", "Steps without a single question",
        f"No questioner prompt was generated in {_span(pts)}: every document set was over the prompt limit "
        "(batch.skipped_clusters), so these steps trained nothing. Set memory.overflow = fit, lower "
        "tasks.docs_per_question or raise sampling.max_prompt_tokens.",
        0.0, 0.0, pts)


RULES = (truncated, no_variance, verifier_yes, questioner_format, flat_rewards, low_question_quality,
         verifier_disagrees, no_questions)


def evaluate(series: dict[str, Sequence[tuple[int, float | None]]]) -> list[dict[str, Any]]:
    """Every alarm that holds on `series`, in RULES order."""
    return [a for a in (rule(series) for rule in RULES) if a is not None]
