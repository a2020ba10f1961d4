"""Reserving items to one annotator at a time (conditional UPDATE that must change one row)."""

from datetime import timedelta

from django.utils import timezone

from webapp.audits import services
from webapp.audits.models import ReviewItem

from .conftest import queue_item


def test_it_serves_the_highest_priority_first(people, run):
    low = queue_item(run)
    high = queue_item(run, reason="disagreement", priority=2)
    item = services.reserve_next(people.annotator, run)
    assert item.pk == high.pk
    assert item.reserved_by == people.annotator
    assert item.reserved_until > timezone.now()
    assert services.reserve_next(people.annotator2, run).pk == low.pk


def test_it_gives_two_annotators_different_items(people, run):
    queue_item(run)
    queue_item(run)
    a = services.reserve_next(people.annotator, run)
    b = services.reserve_next(people.annotator2, run)
    assert a.pk != b.pk
    assert services.reserve_next(people.teammate, run) is None


def test_it_loses_the_race_gracefully_and_takes_the_next_item(people, run, monkeypatch):
    first, second = queue_item(run), queue_item(run)
    real = services.candidates
    stale = list(real(run, people.annotator2).values_list("id", flat=True))  # read before the other claim
    assert stale == [first.pk, second.pk]
    assert services.reserve_next(people.annotator, run).pk == first.pk

    class Stale:
        def __init__(self, qs):
            self.qs = qs

        def exclude(self, **kw):
            return self

        def values_list(self, *a, **kw):
            return stale

    monkeypatch.setattr(services, "candidates", lambda *a, **kw: Stale(None))
    assert services._claim(first.pk, people.annotator2, timezone.now()) is False  # changed no row
    item = services.reserve_next(people.annotator2, run)
    assert item.pk == second.pk
    assert ReviewItem.objects.get(pk=first.pk).reserved_by == people.annotator


def test_it_frees_an_expired_reservation(people, run):
    item = queue_item(run)
    ReviewItem.objects.filter(pk=item.pk).update(reserved_by=people.annotator,
                                                 reserved_until=timezone.now() - timedelta(seconds=1))
    assert services.reserve_next(people.annotator2, run).pk == item.pk


def test_it_releases_expired_reservations(people, run):
    item, kept = queue_item(run), queue_item(run)
    past, future = timezone.now() - timedelta(minutes=1), timezone.now() + timedelta(minutes=1)
    ReviewItem.objects.filter(pk=item.pk).update(reserved_by=people.annotator, reserved_until=past)
    ReviewItem.objects.filter(pk=kept.pk).update(reserved_by=people.annotator2, reserved_until=future)
    assert services.release_expired() == 1
    assert ReviewItem.objects.get(pk=item.pk).reserved_by is None
    assert ReviewItem.objects.get(pk=kept.pk).reserved_by == people.annotator2


def test_it_keeps_one_open_item_per_annotator_and_run(people, run):
    a, b = queue_item(run), queue_item(run)
    assert services.reserve_next(people.annotator, run).pk == a.pk
    assert services.reserve_next(people.annotator, run, skip=a.pk).pk == b.pk
    assert ReviewItem.objects.get(pk=a.pk).reserved_by is None  # given back when moving on
    assert services.reserve_next(people.annotator2, run).pk == a.pk


def test_it_serves_the_skipped_item_when_nothing_else_is_left(people, run):
    only = queue_item(run)
    assert services.reserve_next(people.annotator, run, skip=only.pk).pk == only.pk


def test_it_does_not_serve_an_item_the_annotator_already_labelled(people, run):
    item = queue_item(run, needed=2)
    services.submit_label(people.annotator, services.reserve_next(people.annotator, run), "equivalent")
    assert services.reserve_next(people.annotator, run) is None
    assert services.reserve_next(people.annotator2, run).pk == item.pk


def test_it_does_not_serve_complete_items(people, run):
    item = queue_item(run)
    services.submit_label(people.annotator, item, "equivalent")
    assert services.reserve_next(people.annotator2, run) is None


def test_reserve_item_claims_a_free_item_and_refuses_a_reserved_one(people, run):
    item = queue_item(run)
    assert services.reserve_item(item, people.annotator) is True
    item.refresh_from_db()
    assert services.reserve_item(item, people.annotator) is True  # already theirs
    assert services.reserve_item(item, people.annotator2) is False
