"""SPELL's rewards, as small pure functions (SPELL.md, "Rule rewards" to "Questioner's reward").

Public API other code relies on:
    rule_score(task, response, reference) -> float in [0, 1]
    questioner_reward(rbar, *, mode="gaussian", sigma=1/6) -> float
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

from spell.answers import numbers_match, parse_number, sub_em_strict
from spell.parsing import extract_answer, normalise_letter

PLACEHOLDER = "insert answer here"  # the responder prompt's "(insert answer here)"


# ---------------------------------------------------------------------------------------------
# Rule scores
# ---------------------------------------------------------------------------------------------


def _reference_number(reference: object) -> float | None:
    if isinstance(reference, bool):
        return None
    if isinstance(reference, (int, float)):
        return float(reference) if math.isfinite(reference) else None
    if isinstance(reference, str):
        return parse_number(reference)
    return None


def score_answer(task: str, answer: str | None, reference: object) -> float:
    """Rule score of an already extracted answer (see `rule_score`)."""
    if answer is None:
        return 0.0
    if task == "doc_general_qa":
        if not answer.strip() or PLACEHOLDER in answer.lower():
            return 0.0
        return sub_em_strict(answer, str(reference))
    if task == "doc_mc":
        ref = normalise_letter(reference) if isinstance(reference, str) else None
        return 1.0 if ref is not None and answer.strip().upper() == ref else 0.0
    if task == "docmath_qa":
        pred, ref = parse_number(answer), _reference_number(reference)
        if pred is None or ref is None:
            return 0.0
        return 1.0 if numbers_match(pred, ref) else 0.0
    return 0.0


def rule_score(task: str, response: str, reference: object) -> float:
    """Rule reward of a raw responder text against the questioner's reference, in [0, 1].

    - doc_general_qa: cover exact match (sub_em_strict) of the text after the last "answer is";
    - doc_mc: the letter given equals the reference letter;
    - docmath_qa: the boxed / "answer is" number equals the reference within 0.15% (or after
      scaling by 100, 1e3, 1e6, 1e9, or rounding up to 3 decimals), sign included.
    An unclosed <think> or a missing answer scores 0.
    """
    if not isinstance(response, str):
        return 0.0
    return score_answer(task, extract_answer(task, response), reference)


# ---------------------------------------------------------------------------------------------
# Questioner
# ---------------------------------------------------------------------------------------------

QUESTIONER_MODES = ("gaussian", "reverse", "rzero")


def questioner_reward(rbar: float, *, mode: str = "gaussian", sigma: float = 1 / 6) -> float:
    """Difficulty reward from the mean responder reward `rbar` in [0, 1] of the question's group.

    0 when rbar is 0 or 1 (no variance, in every mode). Otherwise gaussian:
    exp(-(rbar - 0.5)^2 / (2 sigma^2)); reverse: 1 - rbar; rzero: 1 - 2|rbar - 0.5|.
    Penalties (ungrounded -0.5, format -1) are the caller's: see `questioner_outcome_reward`.
    """
    if not (0.0 <= rbar <= 1.0):
        raise ValueError(f"rbar must be in [0, 1], got {rbar!r}")
    if rbar <= 0.0 or rbar >= 1.0:
        return 0.0
    if mode == "gaussian":
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        return math.exp(-((rbar - 0.5) ** 2) / (2 * sigma**2))
    if mode == "reverse":
        return 1.0 - rbar
    if mode == "rzero":
        return 1.0 - 2.0 * abs(rbar - 0.5)
    raise ValueError(f"unknown questioner reward mode {mode!r} (choices: {QUESTIONER_MODES})")


def questioner_outcome_reward(
    *,
    valid: bool,
    grounded: bool = True,
    rbar: float | None = None,
    mode: str = "gaussian",
    sigma: float = 1 / 6,
    format_penalty: float = -1.0,
    ungrounded_penalty: float = -0.5,
) -> float:
    """The questioner's full reward: format error -> -1, ungrounded -> -0.5, else the difficulty
    reward of its group's `rbar`."""
    if not valid:
        return format_penalty
    if not grounded:
        return ungrounded_penalty
    if rbar is None:
        raise ValueError("a valid, grounded question needs its group's rbar")
    return questioner_reward(rbar, mode=mode, sigma=sigma)


def is_ungrounded(no_document_score: float, threshold: float = 0.1) -> bool:
    """Grounding filter: the question, answered once with the documents replaced by "Empty",
    scored `no_document_score`; at or above `threshold` it is guessable without documents."""
    return no_document_score >= threshold


# ---------------------------------------------------------------------------------------------
# Verifier
# ---------------------------------------------------------------------------------------------


def verifier_majority(decisions: Sequence[int], *, rule: str = "paper") -> int:
    """The verifier group's verdict on one responder rollout from its G decisions (1/0/-1).

    paper: 1 when the YES votes are more than G/2 (G = all decisions, format errors included),
    else 0. release: the most common decision, which may be -1 (ties: the one seen first).
    Both return -1 when no decision is valid.
    """
    if not any(d in (0, 1) for d in decisions):
        return -1
    if rule == "paper":
        return 1 if sum(1 for d in decisions if d == 1) > len(decisions) / 2 else 0
    if rule == "release":
        return Counter(decisions).most_common(1)[0][0]
    raise ValueError(f"unknown majority rule {rule!r} (choices: paper, release)")


def responder_reward(rule: float, majority: int | None) -> float:
    """r_res = max(rule score, verifier majority); the rule score alone when the verifier was
    skipped (None) or its majority is a format error (-1)."""
    if majority is None or majority == -1:
        return rule
    return max(rule, float(majority))


def verifier_judgment_rewards(decisions: Sequence[int], majority: int) -> list[float]:
    """Per judgment: 1 if it equals the group majority, 0 if not, -1 if unparsable."""
    out = []
    for d in decisions:
        if d not in (0, 1):
            out.append(-1.0)
        else:
            out.append(1.0 if d == majority else 0.0)
    return out


def verifier_agreement(decisions: Sequence[int], majority: int) -> float:
    """Share of the valid judgments that equal the majority (0 when none is valid)."""
    valid = [d for d in decisions if d in (0, 1)]
    if not valid:
        return 0.0
    return sum(1 for d in valid if d == majority) / len(valid)


def verifier_group_eligible(
    decisions: Sequence[int],
    majority: int,
    rule: float,
    *,
    mode: str = "maj_cons",
    agreement_min: float = 0.51,
    agreement_max: float = 0.99,
) -> bool:
    """Whether a verifier group is trained on: a valid majority, agreed with by 51-99% of the
    valid judgments (unanimous groups carry no signal), and (maj_cons, the paper's consistency
    check) a majority equal to the rule score. `maj` drops the consistency check."""
    if majority not in (0, 1):
        return False
    share = verifier_agreement(decisions, majority)
    if not (agreement_min <= share <= agreement_max):
        return False
    if mode == "maj_cons":
        return float(majority) == float(rule)
    if mode == "maj":
        return True
    raise ValueError(f"unknown verifier eligibility {mode!r} (choices: maj_cons, maj)")
