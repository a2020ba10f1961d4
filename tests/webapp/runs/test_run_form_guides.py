"""/runs/new leads a person: the essentials open and the rest collapsed, an error summary that links
to each bad field, min / max / step from the config's bounds, a queue that fits the preset, and the
corpus a corpus page asked for."""

from __future__ import annotations

import json
import re

import pytest

from webapp.fleet.models import Gpu, Worker
from webapp.runs import services
from webapp.runs.forms import knob_bounds, queue_for_preset
from webapp.runs.models import Run

from tests.webapp.runs.factories import make_corpus
from tests.webapp.runs.test_launch import post_data


def _input(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no input {name}"
    return match.group(0)


def test_only_the_essentials_are_open(owner_client, corpus, model_entry):
    html = owner_client.get("/runs/new").content.decode()

    essentials = html[html.index('id="section-essentials"'):html.index('id="section-eval-sets"')]
    for name in ("name", "preset", "model_entry", "corpus", "queue", "run__steps", "selfplay__group_size"):
        assert f'name="{name}"' in essentials
    assert 'id="section-eval-sets"' in html and "<details" not in html[:html.index('id="section-eval-sets"')]
    sections = re.findall(r"<details[^>]*>", html)
    assert len(sections) >= 10 and all(" open" not in tag for tag in sections)
    assert 'id="section-selfplay"' in html and 'name="selfplay__verifier_samples"' in html  # still there, collapsed
    assert html.count('name="run__steps"') == 1 and html.count('name="selfplay__group_size"') == 1
    assert 'id="error-summary"' not in html


def test_numeric_inputs_carry_the_configs_bounds(owner_client, corpus, model_entry):
    html = owner_client.get("/runs/new").content.decode()

    group = _input(html, "selfplay__group_size")
    assert 'min="2"' in group and 'step="1"' in group and 'type="number"' in group
    assert 'min="1"' in _input(html, "run__steps")
    top_p = _input(html, "sampling__top_p")
    assert 'min="0"' in top_p and 'max="1"' in top_p and 'step="any"' in top_p
    temperature = _input(html, "sampling__temperature")
    assert 'min="0"' in temperature and 'max="10"' in temperature
    assert 'max="3"' in _input(html, "trainer__zero_stage")
    assert 'min="0"' in _input(html, "optim__lr")  # > 0: the browser can only say >= 0


def test_the_bounds_are_the_ones_the_knobs_declare():
    bounds = knob_bounds()
    assert bounds["selfplay.group_size"]["min"] == 2
    assert bounds["run.steps"]["min"] == 1
    assert bounds["selfplay.verifier_share"] == {"min": 0, "max": 1}
    assert bounds["trainer.zero_stage"] == {"min": 0, "max": 3}


def test_an_error_summary_links_to_each_bad_field_and_opens_its_section(owner_client, corpus, model_entry):
    data = post_data(corpus, model_entry, selfplay__group_size="1", rewards__agreement_min="0.9",
                     rewards__agreement_max="0.5", run__steps="0")

    response = owner_client.post("/runs/new", data)

    assert response.status_code == 200 and not Run.objects.exists()
    html = response.content.decode()
    summary = html[html.index('id="error-summary"'):html.index('id="section-essentials"')]
    assert 'role="alert"' in html[html.index('<div class="error-summary"'):html.index('id="section-essentials"')]
    assert "3 problems stop this run from launching" in summary
    links = re.findall(r'href="#([^"]+)" data-focus="([^"]+)"', summary)
    assert [a for a, _ in links] == ["id_run__steps", "id_selfplay__group_size", "id_rewards__agreement_min"]
    assert all(a == b for a, b in links)
    assert "must be &gt;= 2 (got 1)" in summary and "<code>selfplay.group_size</code>" in summary
    assert re.search(r'<details[^>]*id="section-rewards"[^>]*open', html)  # the bad field's section opens
    assert not re.search(r'<details[^>]*id="section-sampling"[^>]*open', html)
    assert 'id="id_rewards__agreement_min"' in html


def test_a_form_wide_error_is_in_the_summary_too(owner_client, team, corpus, model_entry, other_team):
    from webapp.corpora.models import EvalSet

    foreign = EvalSet.objects.create(team=other_team, name="theirs", status=EvalSet.Status.READY, items=3)
    response = owner_client.post("/runs/new", post_data(corpus, model_entry, eval_sets=str(foreign.pk)))

    html = response.content.decode()
    assert 'id="error-summary"' in html and 'href="#section-eval-sets"' in html


def test_a_cuda_preset_picks_a_gpu_queue(owner_client, corpus, model_entry, settings):
    settings.RUN_GPU_QUEUES = ["gpu.1", "gpu.8"]
    assert queue_for_preset("cpu-demo")["queue"] == "cpu"
    unknown = queue_for_preset("paper-7b")  # no worker yet: a queue's name promises nothing
    assert unknown["queue"] == "gpu.1" and "no online worker with that many" in unknown["note"]
    node = Worker.objects.create(hostname="n@x", queues=["gpu.8"], state=Worker.State.ONLINE)
    for i in range(8):
        Gpu.objects.create(worker=node, index=i)

    fit = queue_for_preset("paper-7b")
    assert fit["queue"] == "gpu.8" and "8 CUDA GPU" in fit["note"] and "online worker with 8" in fit["note"]
    response = owner_client.get("/runs/new?preset=paper-7b")
    assert response.context["form"]["queue"].value() == "gpu.8"
    presets = json.loads(response.context["presets_json"])
    assert presets["paper-7b"]["queue"] == "gpu.8" and presets["cpu-demo"]["queue"] == "cpu"
    assert owner_client.get("/runs/new").context["form"]["queue"].value() == "cpu"


def test_a_cuda_preset_prefers_a_queue_an_online_worker_with_enough_gpus_serves(db, settings):
    settings.RUN_GPU_QUEUES = ["gpu.big", "gpu.small"]
    small = Worker.objects.create(hostname="s@x", queues=["gpu.small"], state=Worker.State.ONLINE)
    big = Worker.objects.create(hostname="b@x", queues=["gpu.big"], state=Worker.State.OFFLINE)
    Gpu.objects.create(worker=small, index=0)
    for i in range(8):
        Gpu.objects.create(worker=big, index=i)
    assert "no online worker" in queue_for_preset("paper-7b")["note"]  # the big one is offline
    Worker.objects.filter(pk=big.pk).update(state=Worker.State.ONLINE)
    assert queue_for_preset("paper-7b")["queue"] == "gpu.big"


def test_a_launch_needing_more_gpus_than_the_queues_workers_have_is_refused(db, settings):
    from spell.config import ConfigError
    from webapp.runs.models import ModelEntry

    model_entry = ModelEntry.objects.create(name="qwen-7b", path="/models/qwen", max_positions=32768)
    settings.RUN_GPU_QUEUES = ["gpu.8"]
    node = Worker.objects.create(hostname="n@x", queues=["gpu.8"], state=Worker.State.ONLINE)
    for i in range(4):  # named gpu.8, but its worker reports 4 GPUs
        Gpu.objects.create(worker=node, index=i)

    with pytest.raises(ConfigError) as refused:
        services.build_config("paper-7b", {}, model_entry, "gpu.8")
    assert [e.field for e in refused.value.errors] == ["trainer.num_gpus"]
    assert "at most 4 GPU(s) (their NVML inventory), not 8" in refused.value.reason
    assert services.build_config("paper-7b", {"trainer.num_gpus": 4, "engine.tensor_parallel": 4}, model_entry,
                                 "gpu.8").trainer.num_gpus == 4


def test_a_corpus_page_prefills_its_corpus(owner_client, team, corpus, model_entry):
    newer = make_corpus(team, name="Newer")

    assert owner_client.get("/runs/new").context["form"]["corpus"].value() == newer.pk
    assert owner_client.get(f"/runs/new?corpus={corpus.pk}").context["form"]["corpus"].value() == corpus.pk


def test_a_corpus_of_another_team_is_not_prefilled(owner_client, team, other_team, corpus, model_entry):
    theirs = make_corpus(other_team, name="Theirs")

    assert owner_client.get(f"/runs/new?corpus={theirs.pk}").context["form"]["corpus"].value() == corpus.pk


def test_a_new_run_has_a_name_to_start_with(owner_client, corpus, model_entry):
    form = owner_client.get(f"/runs/new?preset=cpu-demo&corpus={corpus.pk}").context["form"]

    assert form["name"].value() == f"cpu-demo on {corpus.name}"
