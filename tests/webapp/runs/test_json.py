"""JSON endpoints: /runs/<id>/events?after= (backfill) and /runs/<id>/samples (keyset pagination)."""

from __future__ import annotations

import pytest

from webapp.runs.models import RunEvent, Sample


@pytest.fixture
def events(run):
    RunEvent.objects.bulk_create([
        RunEvent(run=run, seq=i, attempt=1, step=i // 2, type="metrics", payload={"loss": i}, superseded=i == 1)
        for i in range(5)
    ])


@pytest.fixture
def samples(run):
    rows = []
    for i in range(7):
        rows.append(Sample(run=run, seq=i, step=i, task="doc_mc" if i % 2 else "doc_general_qa", question=f"q{i}",
                           verdict="YES" if i % 3 else "NO", disagreement=i == 3, superseded=i == 6))
    Sample.objects.bulk_create(rows)
    return list(Sample.objects.filter(run=run).order_by("id"))


def test_it_returns_events_after_a_seq(owner_client, run, events):
    data = owner_client.get(f"/runs/{run.pk}/events?after=1&limit=2").json()

    assert [e["seq"] for e in data["events"]] == [2, 3]
    assert data["more"] is True and data["last_seq"] == 3
    assert data["events"][0] == {"seq": 2, "attempt": 1, "step": 1, "type": "metrics", "time": None,
                                 "payload": {"loss": 2}, "superseded": False}

    rest = owner_client.get(f"/runs/{run.pk}/events?after=3").json()
    assert [e["seq"] for e in rest["events"]] == [4] and rest["more"] is False


def test_it_returns_every_event_by_default(owner_client, run, events):
    data = owner_client.get(f"/runs/{run.pk}/events").json()

    assert [e["seq"] for e in data["events"]] == [0, 1, 2, 3, 4]
    assert data["events"][1]["superseded"] is True


def test_it_answers_400_for_a_bad_after(owner_client, run):
    response = owner_client.get(f"/runs/{run.pk}/events?after=x")

    assert response.status_code == 400
    assert response.json() == {"error": "after and limit must be integers"}


def test_it_pages_samples_by_id(owner_client, run, samples):
    first = owner_client.get(f"/runs/{run.pk}/samples?limit=4").json()
    second = owner_client.get(f"/runs/{run.pk}/samples?limit=4&after_id={first['next_after_id']}").json()

    assert [s["question"] for s in first["samples"]] == ["q0", "q1", "q2", "q3"] and first["more"] is True
    assert [s["question"] for s in second["samples"]] == ["q4", "q5"] and second["more"] is False  # q6 superseded


def test_it_filters_samples(owner_client, run, samples):
    def questions(query):
        return [s["question"] for s in owner_client.get(f"/runs/{run.pk}/samples?{query}").json()["samples"]]

    assert questions("task=doc_mc") == ["q1", "q3", "q5"]
    assert questions("verdict=NO") == ["q0", "q3"]
    assert questions("disagreement=1") == ["q3"]
    assert questions("step=2") == ["q2"]
    assert questions("superseded=1&task=doc_general_qa") == ["q0", "q2", "q4", "q6"]


@pytest.mark.parametrize("query,message", [
    ("after_id=abc", "after_id and limit must be integers"),
    ("step=two", "step must be an integer"),
    ("disagreement=maybe", "disagreement must be 1 or 0"),
])
def test_it_answers_400_for_bad_sample_filters(owner_client, run, query, message):
    response = owner_client.get(f"/runs/{run.pk}/samples?{query}")

    assert response.status_code == 400 and response.json() == {"error": message}


@pytest.mark.parametrize("path", ["events", "samples"])
@pytest.mark.parametrize("who,status", [("outsider", 404), ("annotator", 403)])
def test_it_refuses_users_who_may_not_see_the_run(client, run, path, who, status, request):
    client.force_login(request.getfixturevalue(who))

    assert client.get(f"/runs/{run.pk}/{path}").status_code == status


def test_it_refuses_post(owner_client, run):
    assert owner_client.post(f"/runs/{run.pk}/events").status_code == 405
