"""Metrics JSON, JSONL export, the review log (admins) and per-annotator progress: access and input."""

import json

from webapp.accounts.models import ApiToken
from webapp.audits import services
from webapp.audits.models import ReviewLog

from .conftest import queue_item


def metrics(run):
    return f"/review/runs/{run.pk}/metrics.json"


def export(run):
    return f"/review/runs/{run.pk}/labels.jsonl"


def test_metrics_for_the_team(client, people, run):
    item = queue_item(run, verifier_yes=True)
    services.submit_label(people.annotator, item, "not_equivalent")
    for who in (people.owner, people.annotator, people.admin):
        client.force_login(who)
        r = client.get(metrics(run))
        assert r.status_code == 200
        data = r.json()
        assert data["overall"]["fp"] == 1 and data["alarm"]["threshold"] == 0.2 and data["buckets"][0]["n"] == 1


def test_metrics_take_filters(client, people, run):
    queue_item(run, step=3)
    client.force_login(people.owner)
    r = client.get(metrics(run), {"task": "doc_mc", "stage": "1", "step_min": "0", "step_max": "9", "bucket": "5",
                                  "sample": "unbiased"})
    assert r.status_code == 200
    assert r.json()["filters"] == {"task": "doc_mc", "stage": 1, "step_min": 0, "step_max": 9, "sample": "unbiased"}
    assert r.json()["bucket"] == 5


def test_metrics_refuse_bad_parameters_with_a_message(client, people, run):
    client.force_login(people.owner)
    for params, message in (({"stage": "x"}, "stage must be a whole number"), ({"bucket": "0"}, "bucket must be"),
                            ({"sample": "some"}, "sample must be"), ({"step_min": "5", "step_max": "2"}, "step_min")):
        r = client.get(metrics(run), params)
        assert r.status_code == 400 and message in r.json()["error"]


def test_metrics_are_404_for_outsiders_and_401_for_anonymous(client, people, run):
    client.force_login(people.outsider)
    assert client.get(metrics(run)).status_code == 404
    client.logout()
    assert client.get(metrics(run)).status_code == 401


def test_metrics_accept_an_api_token(client, people, run):
    _, raw = ApiToken.issue(people.owner, "script")
    r = client.get(metrics(run), HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 200 and r.json()["run"] == run.pk


def test_metrics_take_only_get(client, people, run):
    client.force_login(people.owner)
    assert client.post(metrics(run)).status_code == 405


def test_export_for_members(client, people, run):
    item = queue_item(run)
    services.submit_label(people.annotator, item, "equivalent")
    client.force_login(people.owner)
    r = client.get(export(run))
    assert r.status_code == 200 and r["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in b"".join(r.streaming_content).decode().splitlines()]
    assert [row["item"] for row in rows] == [item.pk]


def test_export_is_403_for_annotators_and_404_for_outsiders(client, people, run):
    client.force_login(people.annotator)
    assert client.get(export(run)).status_code == 403
    client.force_login(people.outsider)
    assert client.get(export(run)).status_code == 404
    client.force_login(people.admin)
    assert client.get(export(run)).status_code == 200


def test_the_review_log_is_for_admins(client, people, run):
    services.submit_label(people.annotator, queue_item(run), "equivalent", "fine")
    client.force_login(people.admin)
    r = client.get("/review/log")
    assert r.status_code == 200 and "annotator" in r.content.decode() and "fine" in r.content.decode()
    assert client.get("/review/log", {"run": str(run.pk)}).status_code == 200
    assert client.get("/review/log", {"run": "x"}).status_code == 400
    for who in (people.owner, people.annotator, people.outsider):
        client.force_login(who)
        assert client.get("/review/log").status_code == 403
    client.logout()
    assert client.get("/review/log").status_code == 302
    assert ReviewLog.objects.count() == 1


def test_the_review_log_has_no_write_path(client, people):
    client.force_login(people.admin)
    assert client.post("/review/log").status_code == 405
    r = client.get("/admin/audits/reviewlog/")
    assert r.status_code == 200
    assert client.get("/admin/audits/reviewlog/add/").status_code == 403


def test_progress_per_annotator(client, people, run, other_run):
    services.submit_label(people.annotator, queue_item(run), "equivalent")
    services.submit_label(people.annotator2, queue_item(run), "unsure")
    services.submit_label(people.other_annotator, queue_item(other_run), "equivalent")
    client.force_login(people.annotator)
    body = client.get("/review/progress").content.decode()
    assert "annotator2" in body and "other_annotator" not in body and "other run" not in body
    rows = {row["username"]: row for row in services.annotator_progress([people.team])}
    assert rows["annotator"]["total"] == 1 and rows["annotator2"]["unsure"] == 1
