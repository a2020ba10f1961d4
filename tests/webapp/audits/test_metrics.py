"""Verifier-vs-human metrics on hand-computed confusion matrices and kappa values."""

import math

import pytest

from webapp.audits.metrics import (
    EQUIVALENT as EQ,
    NOT_EQUIVALENT as NE,
    UNSURE as UN,
    Confusion,
    cohens_kappa,
    human_truth,
    wilson_interval,
)


@pytest.mark.parametrize(
    "labels, truth",
    [
        ([EQ], True),
        ([NE], False),
        ([EQ, EQ, NE], True),
        ([EQ, NE], None),  # tie
        ([UN, UN], None),  # all unsure
        ([UN, NE], False),  # unsure does not vote
        ([], None),
    ],
)
def test_it_takes_the_majority_of_sure_labels(labels, truth):
    assert human_truth(labels) is truth


def test_it_computes_wilson_bounds_by_hand():
    # p = 8/10, z = 1.96: centre = (0.8 + 0.19208) / 1.38416 = 0.716738;
    # half = 1.96 * sqrt(0.016 + 0.009604) / 1.38416 = 0.226571
    interval = wilson_interval(8, 10)
    assert interval.value == pytest.approx(0.8)
    assert interval.low == pytest.approx(0.4902, abs=1e-4)
    assert interval.high == pytest.approx(0.9433, abs=1e-4)


def test_it_keeps_wilson_bounds_inside_zero_one():
    assert wilson_interval(0, 5).low == 0.0
    assert wilson_interval(5, 5).high == 1.0
    assert wilson_interval(0, 5).high == pytest.approx(0.4345, abs=1e-4)
    assert wilson_interval(0, 0).value is None


def test_it_counts_a_confusion_matrix():
    pairs = [(True, True)] * 6 + [(True, False)] * 2 + [(False, False)] * 3 + [(False, True)] * 1
    confusion = Confusion.from_pairs(pairs)

    assert (confusion.tp, confusion.fp, confusion.tn, confusion.fn) == (6, 2, 3, 1)
    assert confusion.accuracy().value == pytest.approx(9 / 12)
    assert confusion.precision().value == pytest.approx(6 / 8)
    assert confusion.recall().value == pytest.approx(6 / 7)
    assert confusion.false_accept_rate().value == pytest.approx(2 / 5)
    assert confusion.as_dict()["n"] == 12


def test_it_leaves_rates_empty_without_denominators():
    confusion = Confusion.from_pairs([(True, True)])
    assert confusion.false_accept_rate().value is None
    assert confusion.recall().value == 1.0


def test_it_computes_kappa_by_hand():
    # 10 items, 7 agreements.
    pairs = [(EQ, EQ)] * 5 + [(NE, NE)] * 2 + [(EQ, NE)] * 1 + [(NE, EQ)] * 1 + [(NE, UN)] * 1
    # A: EQ 6, NE 4. B: EQ 6, NE 3, UN 1. p_o = 0.7; p_e = (6*6 + 4*3 + 0*1) / 100 = 0.48
    kappa = cohens_kappa(pairs)
    assert kappa == pytest.approx((0.7 - 0.48) / (1 - 0.48))


def test_it_gives_kappa_one_for_perfect_agreement_and_none_when_undefined():
    assert cohens_kappa([(EQ, EQ), (NE, NE)]) == pytest.approx(1.0)
    assert cohens_kappa([(EQ, EQ), (EQ, EQ)]) is None  # chance agreement is already 1
    assert cohens_kappa([]) is None


def test_it_gives_negative_kappa_for_systematic_disagreement():
    kappa = cohens_kappa([(EQ, NE), (NE, EQ)])
    assert kappa == pytest.approx(-1.0)
    assert not math.isnan(kappa)
