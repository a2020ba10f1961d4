"""/runs/new: the form from describe_fields, presets, RunConfig's messages on the fields, launch."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from spell.config import describe_fields, preset
from webapp.runs.forms import form_values
from webapp.runs.models import Run

from tests.webapp.runs.factories import make_corpus


def post_data(corpus_, entry_, **changes):
    data = {"name": "first", "preset": "cpu-demo", "model_entry": entry_.pk, "corpus": corpus_.pk, "queue": "cpu"}
    for key, value in form_values(preset("cpu-demo")).items():
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif isinstance(value, dict):
            data[key] = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            data[key] = ", ".join(str(v) for v in value)
        else:
            data[key] = "" if value is None else str(value)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def queued_tasks(queue="cpu") -> int:
    return redis.Redis.from_url(settings.REDIS_URL).llen(queue)


def test_it_renders_every_knob_grouped_with_help(owner_client, corpus, model_entry):
    response = owner_client.get("/runs/new")

    assert response.status_code == 200
    html = response.content.decode()
    for name, info in describe_fields().items():
        if name in ("model.path", "model.trust_remote_code", "eval.sets"):  # server paths: not a person's to type
            assert f'name="{name.replace(".", "__")}"' not in html
        else:
            assert f'name="{name.replace(".", "__")}"' in html
    assert "Self-play" in html and "Length curriculum" in html
    assert "G: responder rollouts per question (paper: 8)." in html
    assert '<option value="token-mean"' in html


def test_it_fills_the_preset_values(owner_client, corpus, model_entry):
    demo = owner_client.get("/runs/new?preset=cpu-demo").context["form"]
    paper = owner_client.get("/runs/new?preset=paper-7b").context["form"]

    assert demo["selfplay__group_size"].value() == 4
    assert paper["selfplay__group_size"].value() == 8
    assert paper["trainer__backend"].value() == "deepspeed"


def test_it_launches_a_run_with_a_frozen_config_and_enqueues_it_after_commit(owner_client, owner, corpus, model_entry,
                                                                                 django_capture_on_commit_callbacks):
    data = post_data(corpus, model_entry, selfplay__group_size="6", length_curriculum__stages="512, 1024")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = owner_client.post("/runs/new", data)

    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert (run.state, run.queue, run.preset, run.team, run.created_by) == ("QUEUED", "cpu", "cpu-demo", corpus.team, owner)
    assert run.config["selfplay"]["group_size"] == 6
    assert run.config["length_curriculum"]["stages"] == [512, 1024]
    assert run.config["model"]["path"] == model_entry.path
    assert run.run_dir.endswith(f"run-{run.pk}")
    assert len(callbacks) == 1 and queued_tasks("cpu") == 1


def test_it_shows_runconfig_errors_on_the_fields(owner_client, corpus, model_entry):
    data = post_data(corpus, model_entry, selfplay__group_size="1", rewards__agreement_min="0.9",
                     rewards__agreement_max="0.5", length_curriculum__stages="2048, 1024")

    response = owner_client.post("/runs/new", data)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["selfplay__group_size"] == ["must be >= 2 (got 1)"]
    assert errors["rewards__agreement_min"] == ["must not exceed rewards.agreement_max"]
    assert errors["length_curriculum__stages"] == ["stages must increase"]
    assert not Run.objects.exists()


def test_it_checks_the_config_against_the_models_positions(owner_client, corpus, model_entry):
    model_entry.max_positions = 1024
    model_entry.save()

    response = owner_client.post("/runs/new", post_data(corpus, model_entry))

    assert "exceeds the model's 1024 positions" in response.context["form"].errors["sampling__max_prompt_tokens"][0]
    assert not Run.objects.exists()


def test_it_explains_unparsable_values(owner_client, corpus, model_entry):
    data = post_data(corpus, model_entry, length_curriculum__stages="512, lots", tasks__mix="doc_mc", optim__lr="fast")

    form = owner_client.post("/runs/new", data).context["form"]

    assert form.errors["length_curriculum__stages"] == ["Enter whole numbers separated by commas."]
    assert form.errors["tasks__mix"] == ["'doc_mc': write name=weight."]
    assert form.errors["optim__lr"] == ["Enter a number."]
    assert not Run.objects.exists()


def test_it_refuses_an_unknown_task_in_the_mix(owner_client, corpus, model_entry):
    form = owner_client.post("/runs/new", post_data(corpus, model_entry, tasks__mix="doc_mc=1, poetry=2")).context["form"]

    assert form.errors["tasks__mix"] == ["unknown task 'poetry' (choices: doc_general_qa, doc_mc, docmath_qa)"]


def test_it_refuses_cuda_on_the_cpu_queue(owner_client, corpus, model_entry):
    form = owner_client.post("/runs/new", post_data(corpus, model_entry, trainer__device="cuda", trainer__num_gpus="1")).context["form"]

    assert form.errors["trainer__device"] == ["the cpu queue has no GPUs: choose cpu or a gpu.* queue"]


def test_it_offers_gpu_queues_from_the_setting(owner_client, corpus, model_entry, settings):
    settings.RUN_GPU_QUEUES = ["gpu.a100"]
    data = post_data(corpus, model_entry, queue="gpu.a100", trainer__device="cuda", trainer__num_gpus="1")

    response = owner_client.post("/runs/new", data)

    assert response.status_code == 302
    assert Run.objects.get().queue == "gpu.a100"


def test_it_refuses_an_unknown_queue(owner_client, corpus, model_entry):
    form = owner_client.post("/runs/new", post_data(corpus, model_entry, queue="gpu.secret")).context["form"]

    assert "queue" in form.errors


def test_it_offers_only_ready_corpora_of_the_users_teams(owner_client, team, other_team, corpus, model_entry):
    theirs = make_corpus(other_team, name="Theirs")
    pending = make_corpus(team, name="Pending", status="pending")

    form = owner_client.get("/runs/new").context["form"]
    assert list(form.fields["corpus"].queryset) == [corpus]

    for bad in (theirs, pending):
        response = owner_client.post("/runs/new", post_data(bad, model_entry))
        assert "corpus" in response.context["form"].errors
    assert not Run.objects.exists()


def test_it_needs_a_registered_model(owner_client, corpus, model_entry):
    form = owner_client.post("/runs/new", post_data(corpus, model_entry, model_entry="999")).context["form"]

    assert "model_entry" in form.errors


def test_it_prefills_a_clone(owner_client, run):
    response = owner_client.get(f"/runs/{run.pk}/clone")
    assert response.status_code == 302 and response["Location"] == f"/runs/new?clone={run.pk}"

    form = owner_client.get(response["Location"]).context["form"]

    assert form["name"].value() == "demo (copy)"
    assert form["corpus"].value() == run.corpus_id
    assert form["selfplay__group_size"].value() == run.config["selfplay"]["group_size"]


def test_it_records_the_clone_source(owner_client, run, corpus, model_entry):
    owner_client.post("/runs/new", post_data(corpus, model_entry, cloned_from=str(run.pk)))

    assert Run.objects.exclude(pk=run.pk).get().cloned_from == run


def test_it_requires_login(client):
    response = client.get("/runs/new")

    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_refuses_other_methods(owner_client):
    assert owner_client.put("/runs/new").status_code == 405


def test_it_stores_the_human_review_settings_on_the_run(owner_client, owner, corpus, model_entry):
    data = post_data(corpus, model_entry, name="reviewed", review_share="0.3", double_share="0.5", false_accept_alarm="0.1")

    response = owner_client.post("/runs/new", data)

    run = Run.objects.get(name="reviewed")
    assert response.status_code == 302
    assert run.audit == {"review_share": 0.3, "double_share": 0.5, "false_accept_alarm": 0.1}
    assert "audit" not in run.config  # the spell config stays the library's own


def test_it_refuses_a_review_share_outside_zero_one(owner_client, owner, corpus, model_entry):
    response = owner_client.post("/runs/new", post_data(corpus, model_entry, name="bad share", review_share="1.5"))

    assert response.status_code == 200
    assert "review_share" in response.context["form"].errors
    assert not Run.objects.filter(name="bad share").exists()


def test_every_config_section_has_a_titled_place_in_the_form_and_the_run_page():
    from spell.config import RunConfig
    from webapp.runs.forms import SECTIONS

    assert set(RunConfig().to_dict()) <= set(SECTIONS)


def test_a_folder_left_under_the_new_runs_name_is_moved_aside_not_resumed(run, settings, tmp_path):
    """A database reset while RUNS_ROOT was kept: run #N's folder from before would be resumed
    (its checkpoint) by the new run #N. It is moved aside whole."""
    from webapp.runs.services import claim_run_dir, run_dir_for

    settings.RUNS_ROOT = tmp_path / "runs"
    old = run_dir_for(run)
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "latest").write_text("step-000007\n")

    folder = claim_run_dir(run)

    assert folder == old and not folder.exists()
    (aside,) = [p for p in old.parent.iterdir() if p != old]
    assert aside.name.startswith(f"{old.name}.stale-")
    assert (aside / "checkpoints" / "latest").read_text() == "step-000007\n"  # nothing deleted
    assert claim_run_dir(run) == old  # no folder: nothing to move


@pytest.mark.parametrize("field, value", [
    ("name", "demo\x00run"),
    ("selfplay__verifier_tasks", "doc_general_qa, doc\x00mc"),  # a list field: parsed before CharField's own check
    ("tasks__mix", "doc_general_qa=1, doc\x00mc=1"),
])
def test_a_nul_in_any_text_field_is_a_form_error_never_a_500(owner_client, corpus, model_entry, field, value):
    response = owner_client.post("/runs/new", post_data(corpus, model_entry, **{field: value}))

    assert response.status_code == 200 and field in response.context["form"].errors
    assert "Null characters are not allowed" in str(response.context["form"].errors[field])
    assert not Run.objects.exists()
