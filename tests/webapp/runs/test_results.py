"""Results out: metrics CSV / JSON, samples JSONL, checkpoint zip, register a checkpoint as a model."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from spell.config import ConfigError
from webapp.runs import services
from webapp.runs.models import MetricPoint, ModelEntry, Run, Sample

from tests.support import fake_checkpoint


@pytest.fixture
def metrics(run):
    MetricPoint.objects.bulk_create([
        MetricPoint(run=run, seq=0, step=1, name="loss", value=2.0),
        MetricPoint(run=run, seq=0, step=1, name="reward.responder", value=0.25),
        MetricPoint(run=run, seq=1, step=2, name="loss", value=1.5, superseded=True),
        MetricPoint(run=run, seq=2, step=2, attempt=2, name="loss", value=1.0),
    ])


@pytest.fixture
def checkpoint(run):
    model = fake_checkpoint(run.path, 2, weights=b"\1" * 3000)
    (run.path / "checkpoints" / "step-000002" / "optimizer.pt").write_bytes(b"\0" * 100)
    return model


def test_it_exports_metrics_as_csv(owner_client, run, metrics):
    response = owner_client.get(f"/runs/{run.pk}/metrics.csv")

    assert response["Content-Type"].startswith("text/csv")
    assert f"run-{run.pk}-metrics.csv" in response["Content-Disposition"]
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "step,attempt,name,value", "1,1,loss,2.0", "1,1,reward.responder,0.25", "2,2,loss,1.0"]


def test_it_exports_metrics_as_json(owner_client, run, metrics):
    data = owner_client.get(f"/runs/{run.pk}/metrics.json").json()

    assert data["metrics"] == {"loss": [[1, 2.0], [2, 1.0]], "reward.responder": [[1, 0.25]]}


def test_it_exports_samples_as_jsonl(owner_client, run):
    Sample.objects.create(run=run, seq=0, step=1, task="doc_mc", question="Q?", reference="B", response="B", votes=[1, 1])
    Sample.objects.create(run=run, seq=1, step=2, task="doc_mc", question="old", superseded=True)

    response = owner_client.get(f"/runs/{run.pk}/samples.jsonl")

    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [(s["question"], s["reference"], s["votes"]) for s in lines] == [("Q?", "B", [1, 1])]


def test_it_downloads_a_checkpoint_as_a_zipped_hugging_face_folder(owner_client, run, checkpoint):
    response = owner_client.get(f"/runs/{run.pk}/checkpoints/step-000002.zip")

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    root = f"run-{run.pk}-step-000002"
    assert sorted(archive.namelist()) == [f"{root}/config.json", f"{root}/model.safetensors"]
    assert archive.read(f"{root}/model.safetensors") == b"\1" * 3000


@pytest.mark.parametrize("name", ["step-000009", "..", "latest", "step-000002%2F..%2F.."])
def test_it_answers_404_for_a_checkpoint_it_does_not_have(owner_client, run, checkpoint, name):
    assert owner_client.get(f"/runs/{run.pk}/checkpoints/{name}.zip").status_code == 404


@pytest.fixture
def model_root(settings, tmp_path):
    settings.MODEL_ROOT = tmp_path / "models"
    return settings.MODEL_ROOT


def test_it_registers_a_checkpoint_as_a_model_of_the_runs_team(owner_client, owner, run, checkpoint, model_entry,
                                                                model_root):
    response = owner_client.post(f"/runs/{run.pk}/checkpoints/step-000002/register", {"model_name": "demo-2"}, follow=True)

    entry = ModelEntry.objects.get(name="demo-2")
    assert (entry.team, entry.created_by, entry.max_positions) == (run.team, owner, model_entry.max_positions)
    copied = Path(entry.path)
    assert copied.is_relative_to(model_root / "registered") and copied != checkpoint
    assert (copied / "model.safetensors").read_bytes() == b"\1" * 3000
    assert entry.sha256 == services.folder_sha256(checkpoint) and len(entry.sha256) == 64
    assert [str(m) for m in response.context["messages"]] == [
        "Registered model “demo-2”: choose it for a new run or an evaluation."]
    form = owner_client.get("/runs/new").context["form"]
    assert entry in form.fields["model_entry"].queryset


def test_a_registered_model_outlives_the_run_and_its_checkpoints(owner_client, run, checkpoint, model_root):
    owner_client.post(f"/runs/{run.pk}/checkpoints/step-000002/register", {"model_name": "keeper"})
    entry = ModelEntry.objects.get(name="keeper")

    shutil.rmtree(run.path)  # what keep_last rotation, run deletion and retention do to the run's folder

    assert (Path(entry.path) / "model.safetensors").read_bytes() == b"\1" * 3000
    assert services.folder_sha256(Path(entry.path)) == entry.sha256


def test_another_team_neither_sees_nor_uses_a_teams_model(client, run, checkpoint, model_root, outsider, other_team,
                                                          model_entry):
    from tests.webapp.runs.factories import make_corpus

    services.register_checkpoint(run, "step-000002", "lab-private")
    private = ModelEntry.objects.get(name="lab-private")
    their_corpus = make_corpus(other_team, name="Theirs")
    client.force_login(outsider)

    form = client.get("/runs/new").context["form"]
    assert private not in form.fields["model_entry"].queryset and model_entry in form.fields["model_entry"].queryset
    posted = client.post("/runs/new", {"name": "x", "preset": "cpu-demo", "model_entry": private.pk,
                                       "corpus": their_corpus.pk, "queue": "cpu"})
    assert posted.status_code == 200 and "model_entry" in posted.context["form"].errors
    api = client.post("/runs/api/runs", {"name": "x", "corpus": their_corpus.pk, "model": "lab-private"},
                      content_type="application/json")
    assert api.status_code == 400 and "lab-private" not in api.json()["choices"] and "tiny" in api.json()["choices"]
    with pytest.raises(ConfigError, match="belongs to another team"):
        services.launch(team=other_team, name="x", corpus=their_corpus, model_entry=private,
                        config=services.build_config("cpu-demo", {}, private), preset="cpu-demo", queue="cpu")
    assert not Run.objects.filter(team=other_team).exists()


@pytest.mark.parametrize("data,message", [
    ({"model_name": "tiny"}, "Not registered: the name 'tiny' is taken: choose another."),
    ({"model_name": " "}, "Not registered: a model name is required."),
    ({"model_name": "m" * 201}, "Not registered: a model name has at most 200 characters (this one has 201)."),
])
def test_it_explains_a_refused_registration(owner_client, run, checkpoint, model_entry, model_root, data, message):
    response = owner_client.post(f"/runs/{run.pk}/checkpoints/step-000002/register", data, follow=True)

    assert [str(m) for m in response.context["messages"]] == [message]
    assert ModelEntry.objects.count() == 1
    assert not (model_root / "registered").exists() or not any((model_root / "registered").iterdir())


def test_it_lists_checkpoints_with_sizes_on_the_page(owner_client, run, checkpoint):
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED)

    response = owner_client.get(f"/runs/{run.pk}/")

    (c,) = response.context["checkpoints"]
    folder = run.path / "checkpoints" / "step-000002"
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())  # weights, optimizer, configs
    assert size > 3000 + 100
    assert (c["name"], c["step"], c["latest"], c["bytes"]) == ("step-000002", 2, True, size)
    assert response.context["disk_bytes"] == size + len("step-000002\n")  # and the `latest` pointer


@pytest.mark.parametrize("path", ["metrics.csv", "metrics.json", "samples.jsonl", "checkpoints/step-000002.zip"])
@pytest.mark.parametrize("who,status", [("outsider", 404), ("annotator", 403)])
def test_it_refuses_users_who_may_not_see_the_run(client, run, checkpoint, path, who, status, request):
    client.force_login(request.getfixturevalue(who))

    assert client.get(f"/runs/{run.pk}/{path}").status_code == status


def test_it_refuses_get_for_register(owner_client, run, checkpoint):
    assert owner_client.get(f"/runs/{run.pk}/checkpoints/step-000002/register").status_code == 405
