"""What an annotator can reach: their team's queue, never the run controls nor another team's items."""

import pytest
from django.urls import NoReverseMatch, reverse

from webapp.audits.models import Label
from webapp.runs.models import Run

from .conftest import queue_item


def runs_url(name, run):
    try:
        return reverse(f"runs:{name}", args=[run.pk])
    except NoReverseMatch:  # pragma: no cover - the runs app names its views
        pytest.skip(f"runs:{name} is not routed yet")


@pytest.mark.parametrize("name", ["cancel", "pause", "resume"])
def test_an_annotator_cannot_control_a_run(client, people, run, name):
    client.force_login(people.annotator)
    assert client.post(runs_url(name, run)).status_code == 403
    run.refresh_from_db()
    assert run.state == Run.State.RUNNING and run.requested_action == ""


@pytest.mark.parametrize("name", ["detail", "clone", "events", "samples"])
def test_an_annotator_cannot_open_the_run_pages(client, people, run, name):
    client.force_login(people.annotator)
    assert client.get(runs_url(name, run)).status_code == 403


def test_an_outsider_gets_404_on_another_teams_run(client, people, run):
    client.force_login(people.outsider)
    assert client.get(runs_url("detail", run)).status_code == 404
    assert client.post(runs_url("cancel", run)).status_code == 404


def test_an_annotator_of_team_a_cannot_see_team_b_items(client, people, run, other_run):
    theirs = queue_item(other_run)
    ours = queue_item(run)
    client.force_login(people.annotator)
    assert client.get(f"/review/items/{theirs.pk}/").status_code == 404
    assert client.post(f"/review/items/{theirs.pk}/label", {"label": "equivalent"}).status_code == 404
    assert client.get(f"/review/{other_run.pk}/next").status_code == 404
    assert client.get(f"/review/runs/{other_run.pk}/metrics.json").status_code == 404
    assert client.get(f"/review/runs/{other_run.pk}/labels.jsonl").status_code == 404
    assert "other run" not in client.get("/review/").content.decode()
    assert client.get(f"/review/items/{ours.pk}/").status_code == 200
    assert not Label.objects.filter(item=theirs).exists()


def test_team_b_annotator_cannot_see_team_a_items(client, people, run):
    ours = queue_item(run)
    client.force_login(people.other_annotator)
    assert client.get(f"/review/items/{ours.pk}/").status_code == 404
    assert client.get(f"/review/{run.pk}/next").status_code == 404
