"""The authorization matrix for objects named inside a request, not only in its URL: a member of team B
(the outsider) names each kind of team A's objects in each place a request can carry one (the run
form, the runs API, the upload forms' team), and is refused every time with nothing created; a member
of team A naming the same objects succeeds (the check is not merely refusing everything)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.webapp.accounts.roles import make_people
from tests.webapp.corpora.files import long_text, upload
from tests.webapp.runs.factories import make_corpus
from webapp.corpora.models import Corpus, EvalSet
from webapp.runs.models import ModelEntry, Run


@pytest.fixture
def world(db, settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RUNS_ROOT = tmp_path / "runs"
    settings.MEDIA_ROOT = tmp_path / "media"
    people = make_people()
    shared = ModelEntry.objects.create(name="shared", path="var/models/tiny", max_positions=8192)
    a_model = ModelEntry.objects.create(name="a-model", team=people.team, path="var/models/a", max_positions=8192)
    a_corpus = make_corpus(people.team, name="A corpus")
    b_corpus = make_corpus(people.other_team, name="B corpus")
    a_set = EvalSet.objects.create(team=people.team, name="A set", status=EvalSet.Status.READY, items=3)
    b_set = EvalSet.objects.create(team=people.other_team, name="B set", status=EvalSet.Status.READY, items=3)
    return {"people": people, "shared": shared, "a_model": a_model, "a_corpus": a_corpus, "b_corpus": b_corpus,
            "a_set": a_set, "b_set": b_set}


def as_(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_launch(client, **body):
    return client.post("/runs/api/runs", json.dumps({"name": "probe", **body}), content_type="application/json")


# (what the outsider names, the API body it sends) — each names one of team A's objects
API_CASES = {
    "team A's corpus": lambda w: {"corpus": w["a_corpus"].pk, "model": "shared"},
    "team A's model": lambda w: {"corpus": w["b_corpus"].pk, "model": "a-model"},
    "team A's evaluation set": lambda w: {"corpus": w["b_corpus"].pk, "model": "shared", "eval_sets": ["A set"]},
    "a server path as an evaluation set": lambda w: {"corpus": w["b_corpus"].pk, "model": "shared",
                                                     "overrides": {"eval.sets": ["/etc/passwd"]}},
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_the_api_refuses_another_teams_objects_in_its_body(world, case):
    response = api_launch(as_(world["people"].outsider), **API_CASES[case](world))

    assert response.status_code == 400, response.content
    assert not Run.objects.exists()


def test_the_api_launches_with_the_teams_own_objects(world):
    response = api_launch(as_(world["people"].owner), corpus=world["a_corpus"].pk, model="a-model",
                          eval_sets=["A set"])

    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert (run.team, run.model_entry, list(run.eval_sets.all())) == (world["people"].team, world["a_model"], [world["a_set"]])


FORM_CASES = {
    "team A's corpus": lambda w: {"corpus": w["a_corpus"].pk, "model_entry": w["shared"].pk},
    "team A's model": lambda w: {"corpus": w["b_corpus"].pk, "model_entry": w["a_model"].pk},
    "team A's evaluation set": lambda w: {"corpus": w["b_corpus"].pk, "model_entry": w["shared"].pk,
                                          "eval_sets": [w["a_set"].pk]},
}


@pytest.mark.parametrize("case", sorted(FORM_CASES))
def test_the_run_form_refuses_another_teams_objects(world, case):
    client = as_(world["people"].outsider)
    data = {"name": "probe", "preset": "cpu-demo", "queue": "cpu", **FORM_CASES[case](world)}

    response = client.post("/runs/new", data)

    assert response.status_code == 200 and response.context["form"].errors
    field = {"team A's corpus": "corpus", "team A's model": "model_entry", "team A's evaluation set": "eval_sets"}[case]
    assert field in response.context["form"].errors
    assert not Run.objects.exists()


@pytest.mark.parametrize("url, data", [
    ("/corpora/upload/", lambda w: {"name": "Probe", "cluster_size": 20, "dedup_threshold": 0.8, "min_chars": 100,
                                    "files": [upload("a.txt", long_text(1))]}),
    ("/corpora/evalsets/upload/", lambda w: {"name": "Probe", "file": upload("s.jsonl", '{"question": "q"}\n')}),
])
def test_uploads_refuse_another_teams_team(world, url, data):
    response = as_(world["people"].outsider).post(url, {"team": world["people"].team.pk, **data(world)})

    assert response.status_code == 400 and "team" in response.context["form"].errors
    assert not Corpus.objects.filter(name="Probe").exists() and not EvalSet.objects.filter(name="Probe").exists()
