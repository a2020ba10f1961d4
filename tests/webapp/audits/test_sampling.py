"""The sampling decision: settings from the run config, fixed draws, reasons, verifier decisions."""

import pytest

from webapp.audits import sampling
from webapp.audits.sampling import AuditConfig


def test_it_uses_the_defaults_when_the_run_config_has_no_audit_section():
    cfg = AuditConfig.from_run_config({"seed": 1})
    assert (cfg.review_share, cfg.double_share, cfg.false_accept_alarm) == (0.1, 0.2, 0.2)


def test_it_reads_the_audit_section_and_clamps_shares():
    cfg = AuditConfig.from_run_config({"audit": {"review_share": 0.5, "double_share": 3, "false_accept_alarm": -1}})
    assert (cfg.review_share, cfg.double_share, cfg.false_accept_alarm) == (0.5, 1.0, 0.0)


@pytest.mark.parametrize("bad", ["0.3", None, True, float("nan"), [0.1]])
def test_it_falls_back_to_the_default_for_a_malformed_value(bad):
    assert AuditConfig.from_run_config({"audit": {"review_share": bad}}).review_share == 0.1


def test_it_ignores_an_audit_section_that_is_not_an_object():
    assert AuditConfig.from_run_config({"audit": "lots"}) == AuditConfig()


def test_it_draws_the_same_number_for_the_same_sample_and_purpose():
    assert sampling.draw(17, "review") == sampling.draw(17, "review")
    assert sampling.draw(17, "review") != sampling.draw(17, "double")
    assert all(0 <= sampling.draw(i, "review") < 1 for i in range(200))


def test_it_draws_about_the_share():
    cfg = AuditConfig(review_share=0.25)
    drawn = sum(sampling.reason_for(i, cfg, disagreement=False, split_votes=False) == "random" for i in range(4000))
    assert 850 < drawn < 1150


def test_it_oversamples_disagreement_and_split_votes():
    cfg = AuditConfig(review_share=0.1, disagreement_boost=10, split_boost=4)
    reasons = [sampling.reason_for(i, cfg, disagreement=True, split_votes=False) for i in range(500)]
    assert None not in reasons  # 0.1 x 10 = every disagreement
    assert {"random", "disagreement"} == set(reasons)
    split = [sampling.reason_for(i, cfg, disagreement=False, split_votes=True) for i in range(2000)]
    assert 600 < sum(r is not None for r in split) < 1000  # about 0.4


@pytest.mark.parametrize("verdict, majority, yes", [
    ("YES", "1", True), ("NO", "0", False), ("", "1", True), ("", "0.0", False),
    ("INVALID", "-1", None), ("SKIPPED", "", None), ("", "", None),
])
def test_it_reads_the_verifier_decision(verdict, majority, yes):
    assert sampling.verifier_yes(verdict, majority) is yes


@pytest.mark.parametrize("extra, stage", [({"curriculum_stage": 2}, 2), ({}, None), ({"curriculum_stage": "x"}, None),
                                          ("junk", None), ({"curriculum_stage": 1.0}, 1)])
def test_it_reads_the_curriculum_stage(extra, stage):
    assert sampling.stage_of(extra) == stage
