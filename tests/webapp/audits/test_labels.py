"""submit_label: labels, double annotation, conflicts, and the append-only review log."""

import pytest

from webapp.audits import services
from webapp.audits.models import AppendOnlyError, Label, ReviewItem, ReviewLog

from .conftest import queue_item


def test_it_stores_a_label_logs_it_and_frees_the_item(people, run):
    item = services.reserve_next(people.annotator, queue_item(run).run)
    services.submit_label(people.annotator, item, "not_equivalent", "  wrong year  ")
    label = Label.objects.get()
    assert (label.annotator, label.label, label.note) == (people.annotator, "not_equivalent", "wrong year")
    item.refresh_from_db()
    assert item.label_count == 1 and item.is_complete and item.reserved_by is None
    entry = ReviewLog.objects.get()
    assert (entry.actor_name, entry.action, entry.item_id, entry.run_id) == ("annotator", "label", item.pk, run.pk)
    assert entry.before is None and entry.after == {"label": "not_equivalent", "note": "wrong year"}


def test_it_changes_a_label_and_logs_before_and_after(people, run):
    item = queue_item(run)
    services.submit_label(people.annotator, item, "equivalent")
    services.submit_label(people.annotator, item, "unsure", "on second thought")
    services.submit_label(people.annotator, item, "unsure", "on second thought")  # no change, no entry
    assert Label.objects.get().label == "unsure"
    assert ReviewItem.objects.get().label_count == 1
    entries = list(ReviewLog.objects.order_by("id"))
    assert [e.action for e in entries] == ["label", "relabel"]
    assert entries[1].before == {"label": "equivalent", "note": ""}
    assert entries[1].after == {"label": "unsure", "note": "on second thought"}


@pytest.mark.parametrize("bad", ["", "yes", "EQUIVALENT", None])
def test_it_refuses_an_unknown_label(people, run, bad):
    with pytest.raises(services.ReviewError, match="Choose a label"):
        services.submit_label(people.annotator, queue_item(run), bad)
    assert not Label.objects.exists() and not ReviewLog.objects.exists()


def test_it_refuses_a_note_that_is_too_long(people, run):
    with pytest.raises(services.ReviewError, match="too long"):
        services.submit_label(people.annotator, queue_item(run), "unsure", "x" * 5001)


def test_it_refuses_an_item_reserved_by_someone_else(people, run):
    item = services.reserve_next(people.annotator, queue_item(run).run)
    with pytest.raises(services.ReviewConflict, match="reserved"):
        services.submit_label(people.annotator2, item, "equivalent")
    assert not Label.objects.exists()


def test_it_refuses_a_label_beyond_what_the_item_needs(people, run):
    item = queue_item(run)
    services.submit_label(people.annotator, item, "equivalent")
    with pytest.raises(services.ReviewConflict, match="all the labels"):
        services.submit_label(people.annotator2, item, "equivalent")


def test_a_double_item_goes_to_two_annotators(people, run):
    queue_item(run, needed=2)
    first = services.reserve_next(people.annotator, run)
    services.submit_label(people.annotator, first, "equivalent")
    assert not ReviewItem.objects.get().is_complete
    assert services.reserve_next(people.annotator, run) is None  # not twice to the same person
    second = services.reserve_next(people.annotator2, run)
    assert second.pk == first.pk
    services.submit_label(people.annotator2, second, "not_equivalent")
    item = ReviewItem.objects.get()
    assert item.label_count == 2 and item.is_complete
    assert services.reserve_next(people.teammate, run) is None
    assert set(Label.objects.values_list("annotator__username", "label")) == {
        ("annotator", "equivalent"), ("annotator2", "not_equivalent")}


def test_the_review_log_cannot_be_changed_or_deleted(people, run):
    services.submit_label(people.annotator, queue_item(run), "equivalent")
    entry = ReviewLog.objects.get()
    entry.action = "forged"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        ReviewLog.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(AppendOnlyError):
        ReviewLog.objects.all().delete()
    assert ReviewLog.objects.get().action == "label"


def test_the_review_log_outlives_the_run(people, run):
    services.submit_label(people.annotator, queue_item(run), "equivalent")
    run.delete()
    assert ReviewLog.objects.get().run_id is not None


def test_neighbours_follow_the_order_of_labelling(people, run):
    a, b, c = queue_item(run), queue_item(run), queue_item(run)
    for item in (b, a):
        services.submit_label(people.annotator, item, "equivalent")
    assert services.neighbours(people.annotator, b) == (None, a.pk)
    assert services.neighbours(people.annotator, a) == (b.pk, None)
    assert services.neighbours(people.annotator, c) == (a.pk, None)  # unlabelled: back to the last one
