"""Which verifier judgments go to people: the run's audit settings and the sampling decision.

Pure functions (no queries), so the decision is easy to test and the same for a sample however
often it is delivered: every draw is a hash of the sample id, never a random number.

- Share: each judgment is drawn with probability `review_share`, the same in every stratum
  (task x curriculum stage), so the random share is a proportional stratified sample; in addition
  the first judgment of each stratum a run reports is always taken, so rare strata are never empty.
- Oversampling: a judgment whose verifier majority differs from its rule score is drawn with
  probability `review_share * disagreement_boost`, one whose votes split with
  `review_share * split_boost` (capped at 1). The reason says why an item was drawn; the items
  drawn by the share alone (reasons random and stratum) are the unbiased sample.
- Agreement: an item needs two labels with probability `double_share` (an independent draw).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

DEFAULTS = {"review_share": 0.1, "double_share": 0.2, "false_accept_alarm": 0.2,
            "disagreement_boost": 10.0, "split_boost": 4.0}

PRIORITY = {"disagreement": 2, "split_votes": 1, "stratum": 0, "random": 0}
YES_VALUES = {"yes", "1", "1.0", "true"}
NO_VALUES = {"no", "0", "0.0", "false"}


@dataclass(frozen=True)
class AuditConfig:
    review_share: float = DEFAULTS["review_share"]
    double_share: float = DEFAULTS["double_share"]
    false_accept_alarm: float = DEFAULTS["false_accept_alarm"]
    disagreement_boost: float = DEFAULTS["disagreement_boost"]
    split_boost: float = DEFAULTS["split_boost"]

    @classmethod
    def from_run_config(cls, config: Any) -> "AuditConfig":
        """The run config's "audit" section; a missing or malformed value takes its default."""
        section = config.get("audit") if isinstance(config, dict) else None
        section = section if isinstance(section, dict) else {}
        values = {}
        for key, default in DEFAULTS.items():
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                value = default
            limit = None if key.endswith("_boost") else 1.0
            value = max(0.0, float(value))
            values[key] = min(limit, value) if limit is not None else max(1.0, value)
        return cls(**values)


def draw(sample_id: int, salt: str) -> float:
    """A number in [0, 1) fixed by the sample id and the purpose (salt)."""
    digest = hashlib.sha256(f"{salt}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def verifier_yes(verdict: str, majority: str) -> bool | None:
    """The verifier's decision on a sample: True (YES), False (NO), None (invalid, skipped, none)."""
    for value in (verdict, majority):
        text = (value or "").strip().lower()
        if text in YES_VALUES:
            return True
        if text in NO_VALUES:
            return False
    return None


def stage_of(extra: Any) -> int | None:
    value = extra.get("curriculum_stage") if isinstance(extra, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return int(value)


def reason_for(sample_id: int, cfg: AuditConfig, *, disagreement: bool, split_votes: bool) -> str | None:
    """Why this judgment is drawn for review, or None when it is not."""
    u = draw(sample_id, "review")
    if u < cfg.review_share:
        return "random"
    if disagreement and u < min(1.0, cfg.review_share * cfg.disagreement_boost):
        return "disagreement"
    if split_votes and u < min(1.0, cfg.review_share * cfg.split_boost):
        return "split_votes"
    return None


def needed_labels(sample_id: int, cfg: AuditConfig) -> int:
    return 2 if draw(sample_id, "double") < cfg.double_share else 1
