"""Scripts launch runs and read their metrics and samples with an API token, with their user's rights."""

import json

import pytest

from webapp.accounts.models import ApiToken
from webapp.runs.models import Run


@pytest.fixture
def token(owner):
    _, raw = ApiToken.issue(owner, "script")
    return raw


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post(client, body, raw):
    return client.post("/runs/api/runs", data=json.dumps(body), content_type="application/json", **bearer(raw))


def test_it_launches_a_run_with_a_token(client, token, corpus, model_entry, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, {"name": "from a script", "corpus": corpus.pk, "model": model_entry.name,
                                 "overrides": {"selfplay.group_size": 4}}, token)

    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.state == Run.State.QUEUED and run.name == "from a script"
    assert run.config["selfplay"]["group_size"] == 4
    assert len(callbacks) == 1  # enqueued after commit


def test_it_names_the_bad_config_field(client, token, corpus, model_entry):
    response = post(client, {"name": "bad", "corpus": corpus.pk, "model": model_entry.name,
                             "overrides": {"selfplay.group_size": 1}}, token)

    assert response.status_code == 400
    assert any(e["field"] == "selfplay.group_size" for e in response.json()["errors"])
    assert not Run.objects.filter(name="bad").exists()


@pytest.mark.parametrize("body, field", [
    ({"corpus": 1, "model": "tiny"}, "name"),
    ({"name": "x", "corpus": 999999, "model": "tiny"}, "corpus"),
    ({"name": "x", "model": "nope"}, "corpus"),
])
def test_it_refuses_incomplete_launches_with_a_field(client, token, corpus, model_entry, body, field):
    response = post(client, body, token)

    assert response.status_code == 400
    assert response.json()["field"] == field


def test_it_refuses_a_body_that_is_not_json(client, token):
    response = client.post("/runs/api/runs", data="{nope", content_type="application/json", **bearer(token))
    assert response.status_code == 400


def test_it_cannot_launch_on_another_teams_corpus(client, outsider, corpus, model_entry):
    _, raw = ApiToken.issue(outsider, "script")
    response = post(client, {"name": "x", "corpus": corpus.pk, "model": model_entry.name}, raw)
    assert response.status_code == 400 and response.json()["field"] == "corpus"


def test_it_says_401_without_credentials(client, db):
    assert client.get("/runs/api/runs").status_code == 401
    assert client.get("/runs/api/runs", **bearer("not-a-token")).status_code == 401


def test_it_reads_metrics_and_samples_with_a_token(client, token, run):
    assert client.get(f"/runs/{run.pk}/metrics.json", **bearer(token)).status_code == 200
    assert client.get(f"/runs/{run.pk}/samples", **bearer(token)).status_code == 200
    listed = client.get("/runs/api/runs", **bearer(token)).json()["runs"]
    assert [r["id"] for r in listed] == [run.pk]


def test_a_token_has_no_more_rights_than_its_user(client, outsider, run):
    _, raw = ApiToken.issue(outsider, "script")
    assert client.get(f"/runs/{run.pk}/metrics.json", **bearer(raw)).status_code == 404
    assert client.get("/runs/api/runs", **bearer(raw)).json()["runs"] == []


@pytest.mark.parametrize("body", [
    {"name": "a\x00b"},
    {"name": "ok", "overrides": {"prompts.style": "small\x00"}},
    {"name": "ok", "overrides": {"selfplay.verifier_tasks": ["doc_mc\x00"]}},
    {"name": "ok", "eval_sets": ["x\x00"]},
])
def test_a_nul_character_anywhere_in_the_body_is_a_clear_400(client, token, corpus, model_entry, body):
    response = post(client, {"corpus": corpus.pk, "model": model_entry.name, **body}, token)

    assert response.status_code == 400 and "NUL" in response.json()["error"]
    assert not Run.objects.exists()
