"""/runs/ and /runs/<id>/: who sees what; state, controls, config, diff, metrics, samples, log."""

from __future__ import annotations

import re

import pytest

from webapp.runs.models import MetricPoint, Run, Sample

from tests.webapp.runs.factories import make_run


def test_it_lists_the_runs_of_the_users_teams(client, owner, outsider, run, other_team, corpus, model_entry):
    client.force_login(owner)
    response = client.get("/runs/")
    assert response.status_code == 200
    assert list(response.context["runs"]) == [run]
    assert "#1 in queue" in response.content.decode()

    client.force_login(outsider)
    assert list(client.get("/runs/").context["runs"]) == []


@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("admin", 200), ("outsider", 404), ("annotator", 403)])
def test_it_checks_access(client, run, who, status, request):
    client.force_login(request.getfixturevalue(who))

    assert client.get(f"/runs/{run.pk}/").status_code == status


def test_it_redirects_anonymous_users_to_login(client, run):
    response = client.get(f"/runs/{run.pk}/")

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_returns_404_for_a_missing_run(owner_client, db):
    assert owner_client.get("/runs/999/").status_code == 404


def test_it_shows_state_controls_config_metrics_samples_and_error(owner_client, run):
    Run.objects.filter(pk=run.pk).update(state=Run.State.FAILED, error="spell train: error: boom", attempt=1)
    MetricPoint.objects.create(run=run, seq=0, step=3, name="reward.responder", value=0.42)
    Sample.objects.create(run=run, seq=1, step=3, task="doc_mc", question="Which colour?", response="Blue", verdict="YES")
    run.path.mkdir(parents=True)
    (run.path / "logs").mkdir()
    (run.path / "logs" / "attempt-1.log").write_text("loading model\nspell train: error: boom\n")

    response = owner_client.get(f"/runs/{run.pk}/")

    html = response.content.decode()
    assert response.context["can_resume"] and not response.context["can_pause"]
    assert "spell train: error: boom" in html
    assert "reward.responder" in html and "0.42" in html
    assert "Which colour?" in html
    assert "loading model" in html
    assert "selfplay.group_size" in html
    assert f"/runs/{run.pk}/resume" in html and f"/runs/{run.pk}/pause" not in html
    assert "studio/run.js" in html


def test_it_shows_the_config_diff_against_another_run(owner_client, run, team, corpus, model_entry):
    other = make_run(team, corpus, model_entry, name="other", overrides={"selfplay.group_size": 6, "optim.lr": 3e-6})

    response = owner_client.get(f"/runs/{run.pk}/?against={other.pk}")

    diff = {row["field"]: (row["this"], row["other"]) for row in response.context["diff"]}
    assert diff == {"selfplay.group_size": (4, 6), "optim.lr": (1e-5, 3e-6)}
    assert 'id="config-diff"' in response.content.decode()


def test_it_explains_a_bad_diff_target(owner_client, run, other_team, corpus, model_entry):
    theirs = make_run(other_team, corpus, model_entry, name="theirs")

    for against in ("abc", str(theirs.pk), "999"):
        response = owner_client.get(f"/runs/{run.pk}/?against={against}")
        assert response.status_code == 200
        assert response.context["diff"] is None
        assert "No run of yours" in response.content.decode()


def test_it_shows_the_queue_position(owner_client, run, team, corpus, model_entry):
    second = make_run(team, corpus, model_entry, name="second")

    assert owner_client.get(f"/runs/{second.pk}/").context["queue_position"] == 2
    assert run.queue_position() == 1


def test_it_refuses_post(owner_client, run):
    assert owner_client.post(f"/runs/{run.pk}/").status_code == 405


def _reward_note(client, run):
    html = client.get(f"/runs/{run.pk}/").content.decode()
    return re.search(r'<p class="muted" id="reward-sources">(.*?)</p>', html).group(1)


def test_it_says_which_tasks_the_verifier_judges_and_which_the_rule_alone(owner_client, run, team, corpus, model_entry):
    # cpu-demo: the verifier judges free-form QA only
    assert _reward_note(owner_client, run) == (
        "Responder reward: max(rule score, verifier majority) for doc_general_qa; the rule score alone for "
        "doc_mc, docmath_qa (the verifier does not judge them: selfplay.verifier_tasks / verifier_enabled).")
    every = make_run(team, corpus, model_entry, name="all", overrides={
        "selfplay.verifier_tasks": ["doc_general_qa", "doc_mc", "docmath_qa"], "tasks.mix": {"doc_mc": 1.0}})
    assert _reward_note(owner_client, every) == "Responder reward: max(rule score, verifier majority) for doc_mc."
    off = make_run(team, corpus, model_entry, name="off", overrides={"selfplay.verifier_enabled": False, "tasks.mix": {"doc_mc": 1.0}})
    assert _reward_note(owner_client, off).startswith("Responder reward: the rule score alone for doc_mc (")


def test_a_running_run_shows_its_progress_line_and_finished_steps(owner_client, run):
    progress = {"responder": {"phase": "responder", "done": 12, "total": 36, "unit": "sequences", "eta_s": 40.0,
                              "state": "running", "step": 2, "attempt": 1, "time": 5.0}}
    Run.objects.filter(pk=run.pk).update(state=Run.State.RUNNING, attempt=1, last_step=1, progress=progress)

    page = owner_client.get(f"/runs/{run.pk}/").content.decode()

    line = re.search(r'<p class="progress-line" id="run-progress"[^>]*>([^<]*)</p>', page)
    assert line and line.group(1) == "Step 2 in progress: responder 12/36 sequences, ETA 40 s"
    assert re.search(r'<span id="run-step">1</span> of \d+ steps done', page)

    Run.objects.filter(pk=run.pk).update(state=Run.State.CANCELLED)
    page = owner_client.get(f"/runs/{run.pk}/").content.decode()
    assert re.search(r'<p class="progress-line" id="run-progress"[^>]* hidden></p>', page)  # no work in progress
