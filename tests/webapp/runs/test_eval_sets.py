"""Evaluation sets reach a run by name, from the form and the API; the worker hands them to the
training process as files in the run folder; server paths never come from a person."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spell.evaluation import read_sets
from spell.provenance import build_provenance, file_sha256
from tests.webapp.corpora.files import upload
from tests.webapp.runs.test_api import bearer, post, token  # noqa: F401 - the token fixture
from tests.webapp.runs.test_launch import post_data
from webapp.accounts.models import ApiToken
from webapp.bootstrap import SAMPLE_EVAL_SETS, ensure_sample_eval_sets
from webapp.corpora import services as corpora
from webapp.corpora.models import EvalSet
from webapp.runs.models import Run
from workers.ingest_tasks import ingest_eval_set
from workers.supervisor import CONFIG_NAME, prepare_run_dir

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def ready_set(team, name, filename="heldout_towns_mc.json"):
    path = ROOT / "samples" / "eval" / filename
    eval_set = corpora.create_eval_set_upload(team, name, upload(path.name, path.read_bytes()))
    ingest_eval_set.apply(args=[eval_set.pk]).get()
    eval_set.refresh_from_db()
    assert eval_set.status == EvalSet.Status.READY, eval_set.error
    return eval_set


def test_the_form_offers_the_teams_ready_sets_and_the_run_keeps_the_chosen_ones(owner_client, team, other_team, corpus,
                                                                             model_entry):
    mine, theirs = ready_set(team, "towns-mc"), ready_set(other_team, "their-set")
    form = owner_client.get("/runs/new").context["form"]
    assert list(form.fields["eval_sets"].queryset) == [mine]
    assert "eval__sets" not in form.fields  # the raw-path knob is not in the form

    response = owner_client.post("/runs/new", {**post_data(corpus, model_entry), "eval_sets": [mine.pk]})
    run = Run.objects.get()
    assert response.status_code == 302 and list(run.eval_sets.all()) == [mine]
    assert run.config["eval"]["sets"] == []  # the config holds no server paths

    # another team's set is not a choice
    response = owner_client.post("/runs/new", {**post_data(corpus, model_entry, name="second"), "eval_sets": [theirs.pk]})
    assert response.status_code == 200 and "eval_sets" in response.context["form"].errors
    # an id past what a database column holds is an unknown choice too, not a 500
    response = owner_client.post("/runs/new", {**post_data(corpus, model_entry, name="third"), "eval_sets": ["9" * 30]})
    assert response.status_code == 200 and "eval_sets" in response.context["form"].errors
    # a clone starts with the same sets
    clone = owner_client.get(f"/runs/new?clone={run.pk}").context["form"]
    assert clone.initial["eval_sets"] == [mine.pk]


def test_the_api_takes_sets_by_name_and_refuses_unknown_names_and_raw_paths(client, token, team, corpus, model_entry):  # noqa: F811
    mine = ready_set(team, "towns-qa", "heldout_towns_qa.jsonl")
    body = {"name": "api", "corpus": corpus.pk, "model": model_entry.name}
    response = post(client, {**body, "eval_sets": ["towns-qa"]}, token)
    assert response.status_code == 201, response.content
    assert response.json()["eval_sets"] == ["towns-qa"]
    assert list(Run.objects.get().eval_sets.all()) == [mine]

    response = post(client, {**body, "eval_sets": ["nope"]}, token)
    assert response.status_code == 400 and response.json()["choices"] == ["towns-qa"]
    response = post(client, {**body, "overrides": {"eval.sets": ["/etc/passwd"]}}, token)
    assert response.status_code == 400 and "eval_sets" in response.json()["error"]
    assert Run.objects.count() == 1


def test_the_worker_copies_the_sets_into_the_run_folder_once_and_points_the_config_there(owner_client, team, corpus,
                                                                                        model_entry):
    mc, qa = ready_set(team, "towns-mc"), ready_set(team, "towns-qa", "heldout_towns_qa.jsonl")
    owner_client.post("/runs/new", {**post_data(corpus, model_entry), "eval_sets": [mc.pk, qa.pk]})
    run = Run.objects.get()

    config_path, _ = prepare_run_dir(run)
    sets = json.loads(config_path.read_text())["eval"]["sets"]
    assert [Path(p).name for p in sets] == [f"towns-mc-{mc.pk}.jsonl", f"towns-qa-{qa.pk}.jsonl"]
    assert all(Path(p).parent == Path(run.run_dir) / "eval" for p in sets)
    # the training process reads them (the stored items format)
    read = read_sets(sets)
    assert {len(items) for items in read.values()} == {100}
    assert {items[0].task for items in read.values()} == {"doc_mc", "doc_general_qa"}
    assert run.config["eval"]["sets"] == []  # the stored config stays as frozen

    # a resumed attempt evaluates on the same files even when a set is gone since
    mc.delete()
    config_path, _ = prepare_run_dir(Run.objects.get(pk=run.pk))
    assert json.loads(config_path.read_text())["eval"]["sets"] == sets
    assert config_path.name == CONFIG_NAME


@pytest.mark.django_db
def test_the_bundled_held_out_sets_load_once(team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = ensure_sample_eval_sets(team, ROOT / "samples" / "eval")
    assert sorted(s.name for s in first) == sorted(SAMPLE_EVAL_SETS)
    assert ensure_sample_eval_sets(team, ROOT / "samples" / "eval") == first
    assert EvalSet.objects.filter(team=team).count() == 2


def test_the_api_lists_a_runs_sets(client, owner, team, corpus, model_entry):
    mine = ready_set(team, "towns-mc")
    _, raw = ApiToken.issue(owner, "list")
    post(client, {"name": "api", "corpus": corpus.pk, "model": model_entry.name, "eval_sets": [mine.name]}, raw)
    runs = client.get("/runs/api/runs", **bearer(raw)).json()["runs"]
    assert runs[0]["eval_sets"] == ["towns-mc"]


def test_the_corpus_snapshot_leaves_out_documents_that_copy_the_runs_evaluation_text(owner_client, team, corpus,
                                                                                    model_entry):
    from webapp.corpora.models import Document

    mc = ready_set(team, "towns-mc")
    planted = corpora.eval_set_items(mc)[0].context.split("\n\n")[1]  # one town's whole document
    Document.objects.create(corpus=corpus, cluster=corpus.clusters.first(), external_id="planted", title="copy",
                            text="Notes from the archive. " + planted, numeric=False, tokens=200)
    owner_client.post("/runs/new", {**post_data(corpus, model_entry), "eval_sets": [mc.pk]})
    run = Run.objects.get()

    _, corpus_path = prepare_run_dir(run)
    ids = [json.loads(line)["id"] for line in corpus_path.read_text().splitlines()]
    assert "planted" not in ids and len(ids) == 4
    report = json.loads((Path(run.run_dir) / "decontamination.json").read_text())
    assert report == {"eval_sets": [f"towns-mc-{mc.pk}"], "documents": 5, "dropped": ["planted"],
                      "dropped_titles": ["copy"], "corpus_sha256": file_sha256(corpus_path)}
    # the run's provenance (written by the training process) and its page list the dropped titles
    provenance = build_provenance(config={}, seed=0, corpus_path=corpus_path)
    assert provenance["corpus"]["decontamination"] == {"eval_sets": [f"towns-mc-{mc.pk}"], "documents": 5, "dropped": 1,
                                                       "dropped_titles": ["copy"], "more_dropped": 0}
    page = owner_client.get(f"/runs/{run.pk}/").content.decode()
    assert "Decontamination at launch: 1 of 5 corpus documents" in page and "<li>copy</li>" in page


def test_a_run_whose_corpus_is_mostly_evaluation_text_is_refused_clearly(owner_client, team, model_entry):
    from tests.webapp.runs.factories import make_corpus
    from webapp.corpora.models import Document

    mc = ready_set(team, "towns-mc")
    corpus = make_corpus(team, name="copies", docs=1)
    for k, item in enumerate(corpora.eval_set_items(mc)[:3]):
        Document.objects.create(corpus=corpus, cluster=corpus.clusters.first(), external_id=f"copy{k}", title="copy",
                                text=item.context, numeric=False, tokens=500)
    owner_client.post("/runs/new", {**post_data(corpus, model_entry), "eval_sets": [mc.pk]})
    run = Run.objects.get()

    with pytest.raises(RuntimeError, match="3 of 4 corpus documents copy text of the run's evaluation sets"):
        prepare_run_dir(run)
    assert not (Path(run.run_dir) / "corpus.jsonl").exists()
