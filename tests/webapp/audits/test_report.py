"""Numbers per run from people's labels, checked against a hand-computed confusion matrix and kappa."""

import pytest

from webapp.audits import services
from webapp.audits.metrics import EQUIVALENT as EQ, NOT_EQUIVALENT as NE, UNSURE as UN, wilson_interval
from webapp.audits.models import Label, ReviewItem

from .conftest import make_run, queue_item

# (verifier_yes, labels in order, step, task)  ->  outcome
CASES = [
    (True, [EQ], 1, "doc_mc"),        # TP
    (True, [EQ, EQ], 2, "doc_mc"),    # TP
    (True, [NE], 3, "doc_mc"),        # FP
    (True, [NE, UN], 11, "doc_general_qa"),  # FP (unsure does not vote)
    (False, [NE], 12, "doc_general_qa"),     # TN
    (False, [EQ], 13, "doc_general_qa"),     # FN
    (False, [NE, NE], 14, "doc_general_qa"),  # TN
    (True, [EQ, NE], 15, "doc_mc"),   # tie: left out, counted
    (False, [UN], 21, "doc_mc"),      # all unsure: left out, counted
    (False, [UN, UN], 22, "doc_mc"),  # all unsure
]


def label_cases(people, run, cases=CASES, reason="random"):
    for yes, labels, step, task in cases:
        item = queue_item(run, verifier_yes=yes, needed=len(labels), step=step, task=task, reason=reason)
        for who, value in zip((people.annotator, people.annotator2), labels):
            Label.objects.create(item=item, annotator=who, label=value)
        ReviewItem.objects.filter(pk=item.pk).update(label_count=len(labels))


def test_it_counts_the_confusion_matrix_by_hand(people, run):
    label_cases(people, run)
    overall = services.run_metrics(run)["overall"]
    assert (overall["tp"], overall["fp"], overall["tn"], overall["fn"], overall["n"]) == (2, 2, 2, 1, 7)
    assert overall["items"] == 10
    assert overall["no_truth"] == {"ties": 1, "all_unsure": 2}
    assert overall["accuracy"]["value"] == pytest.approx(4 / 7)
    assert overall["precision"]["value"] == pytest.approx(2 / 4)
    assert overall["recall"]["value"] == pytest.approx(2 / 3)
    assert overall["false_accept_rate"]["value"] == pytest.approx(2 / 4)
    # Wilson 95% for 2 of 4: 0.5 +- 1.96 * sqrt(1/16 + 1.96^2/64) / (1 + 1.96^2/4) = [0.150, 0.850]
    assert overall["false_accept_rate"]["low"] == pytest.approx(0.1500, abs=5e-4)
    assert overall["false_accept_rate"]["high"] == pytest.approx(0.8500, abs=5e-4)
    acc = wilson_interval(4, 7)
    assert (overall["accuracy"]["low"], overall["accuracy"]["high"]) == pytest.approx((acc.low, acc.high))


def test_it_computes_kappa_between_the_first_two_labels(people, run):
    label_cases(people, run)
    kappa = services.run_metrics(run)["overall"]["kappa"]
    # pairs: EQ-EQ, NE-UN, NE-NE, EQ-NE, UN-UN -> observed 3/5; first (EQ2 NE2 UN1), second (EQ1 NE2 UN2)
    # expected (2*1 + 2*2 + 1*2)/25 = 8/25; kappa = (0.6 - 0.32) / 0.68 = 7/17
    assert kappa["n"] == 5
    assert kappa["value"] == pytest.approx(7 / 17)


def test_it_splits_by_task_stage_and_step_range(people, run):
    label_cases(people, run)
    data = services.run_metrics(run, bucket=10)
    assert set(data["by_task"]) == {"doc_mc", "doc_general_qa"}
    mc, qa = data["by_task"]["doc_mc"], data["by_task"]["doc_general_qa"]
    assert (mc["tp"], mc["fp"], mc["tn"], mc["fn"]) == (2, 1, 0, 0)
    assert mc["no_truth"] == {"ties": 1, "all_unsure": 2}
    assert (qa["tp"], qa["fp"], qa["tn"], qa["fn"]) == (0, 1, 2, 1)
    assert list(data["by_stage"]) == ["0"]
    assert data["bucket"] == 10
    assert [(b["step_min"], b["step_max"], b["n"]) for b in data["buckets"]] == [(0, 9, 3), (10, 19, 4), (20, 29, 0)]
    assert data["buckets"][2]["no_truth"]["all_unsure"] == 2


def test_it_picks_a_bucket_size_for_about_ten_points(people, run):
    label_cases(people, run)
    assert services.run_metrics(run)["bucket"] == 3  # steps 1..22 -> ceil(22 / 10)


def test_it_filters_by_task_stage_and_steps(people, run):
    label_cases(people, run)
    f = services.Filters(task="doc_general_qa", step_min=12, step_max=13)
    overall = services.run_metrics(run, f)["overall"]
    assert (overall["tn"], overall["fn"], overall["n"]) == (1, 1, 2)
    assert services.run_metrics(run, services.Filters(stage=5))["overall"]["items"] == 0


def test_it_reports_empty_intervals_without_labels(people, run):
    queue_item(run)
    data = services.run_metrics(run)
    assert data["overall"]["n"] == 0 and data["overall"]["accuracy"] == {"value": None, "low": None, "high": None}
    assert data["overall"]["kappa"] == {"value": None, "n": 0}
    assert data["buckets"] == [] and data["queue"] == {"items": 1, "pending": 1, "labelled": 0}
    assert data["alarm"]["triggered"] is False


def test_the_alarm_fires_when_the_lower_bound_passes_the_threshold(people):
    run = make_run(people.team, audit={"false_accept_alarm": 0.5})
    label_cases(people, run, [(True, [NE], s, "doc_mc") for s in range(10)])  # FAR 10/10, low ~0.72
    alarm = services.false_accept_alarm(run)
    assert alarm["triggered"] is True and alarm["n"] == 10 and alarm["threshold"] == 0.5
    assert alarm["low"] == pytest.approx(wilson_interval(10, 10).low)
    calm = make_run(people.team, audit={"false_accept_alarm": 0.8})
    label_cases(people, calm, [(True, [NE], s, "doc_mc") for s in range(10)])
    assert services.false_accept_alarm(calm)["triggered"] is False


def test_the_alarm_counts_only_the_unbiased_share(people):
    run = make_run(people.team, audit={"false_accept_alarm": 0.2})
    label_cases(people, run, [(True, [NE], s, "doc_mc") for s in range(10)], reason="disagreement")
    label_cases(people, run, [(False, [NE], s, "doc_mc") for s in range(10)], reason="random")
    data = services.run_metrics(run)
    assert data["overall"]["fp"] == 10 and data["unbiased"]["fp"] == 0
    assert data["alarm"]["triggered"] is False and data["alarm"]["n"] == 10
    unbiased = services.run_metrics(run, services.Filters(unbiased=True))["overall"]
    assert (unbiased["fp"], unbiased["tn"]) == (0, 10)
