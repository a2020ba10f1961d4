"""The queue index, /review/<run>/next and the empty queue."""

from webapp.audits.models import Label
from webapp.audits import services

from .conftest import make_run, queue_item


def test_it_lists_runs_with_pending_items_of_my_teams(client, people, run, other_run):
    queue_item(run)
    queue_item(other_run)
    make_run(people.team, name="quiet run")  # nothing queued
    client.force_login(people.annotator)
    r = client.get("/review/")
    assert r.status_code == 200
    body = r.content.decode()
    assert f"/review/{run.pk}/next" in body
    assert "other run" not in body and "quiet run" not in body


def test_it_counts_what_is_left_for_me(client, people, run):
    item = queue_item(run, needed=2)
    services.submit_label(people.annotator, item, "equivalent")
    client.force_login(people.annotator)
    assert "nothing for you" in client.get("/review/").content.decode()
    client.force_login(people.annotator2)
    assert f"/review/{run.pk}/next" in client.get("/review/").content.decode()


def test_next_reserves_and_redirects_to_the_item(client, people, run):
    item = queue_item(run)
    client.force_login(people.annotator)
    r = client.get(f"/review/{run.pk}/next")
    assert r.status_code == 302 and r["Location"] == f"/review/items/{item.pk}/"
    item.refresh_from_db()
    assert item.reserved_by == people.annotator


def test_next_says_when_nothing_is_left(client, people, run):
    item = queue_item(run)
    Label.objects.create(item=item, annotator=people.annotator, label="equivalent")
    item.label_count = 1
    item.save()
    client.force_login(people.annotator)
    r = client.get(f"/review/{run.pk}/next")
    assert r.status_code == 200
    assert "Nothing left for you" in r.content.decode()
    assert f"/review/items/{item.pk}/" in r.content.decode()  # back to the last one


def test_next_is_404_for_another_teams_run(client, people, other_run):
    queue_item(other_run)
    client.force_login(people.annotator)
    assert client.get(f"/review/{other_run.pk}/next").status_code == 404
    assert client.get("/review/999999/next").status_code == 404


def test_next_takes_only_get(client, people, run):
    client.force_login(people.annotator)
    assert client.post(f"/review/{run.pk}/next").status_code == 405


def test_the_queue_needs_a_login(client):
    assert client.get("/review/").status_code == 302
