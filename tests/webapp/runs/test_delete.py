"""Deleting a run (with confirmation; its files go too), disk usage and retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from webapp.runs import services
from webapp.runs.models import Run, RunEvent

from tests.support import fake_checkpoint


@pytest.fixture
def finished(run):
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED, finished_at=timezone.now())
    for step in (1, 2, 3):
        fake_checkpoint(run.path, step, weights=b"\0" * 1000)
    RunEvent.objects.create(run=run, seq=0, type="log", payload={})
    run.refresh_from_db()
    return run


def test_it_asks_for_confirmation_with_the_disk_usage(owner_client, finished):
    response = owner_client.get(f"/runs/{finished.pk}/delete")

    assert response.status_code == 200
    files = [f for f in finished.path.rglob("*") if f.is_file()]
    assert response.context["disk_bytes"] == sum(f.stat().st_size for f in files) > 3000  # the weights and the rest
    assert Run.objects.filter(pk=finished.pk).exists()


def test_it_deletes_the_run_and_its_files(owner_client, finished, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(f"/runs/{finished.pk}/delete", {"confirm": finished.name}, follow=True)

    assert response.redirect_chain[-1][0] == "/runs/"
    assert not Run.objects.filter(pk=finished.pk).exists()
    assert not RunEvent.objects.exists()
    assert not finished.path.exists()


def test_it_keeps_the_run_without_the_right_confirmation(owner_client, finished):
    response = owner_client.post(f"/runs/{finished.pk}/delete", {"confirm": "nope"}, follow=True)

    assert [str(m) for m in response.context["messages"]] == ["Type the run's name to confirm."]
    assert Run.objects.filter(pk=finished.pk).exists() and finished.path.exists()


@pytest.fixture
def labelled(finished, team, annotator):
    from webapp.audits.models import Label, ReviewItem
    from webapp.runs.models import Sample

    sample = Sample.objects.create(run=finished, seq=0, step=1, task="doc_general_qa", question="Q?", verdict="YES")
    item = ReviewItem.objects.create(sample=sample, run=finished, team=team, task=sample.task, stage=0, step=1,
                                     verifier_yes=True)
    Label.objects.create(item=item, annotator=annotator, label="equivalent")
    return finished


def test_it_asks_before_it_deletes_annotators_labels(owner_client, labelled):
    from webapp.audits.models import Label

    page = owner_client.get(f"/runs/{labelled.pk}/delete").content.decode()
    assert "1 label" in page and "1 annotator" in page and f"/review/runs/{labelled.pk}/labels.jsonl" in page

    response = owner_client.post(f"/runs/{labelled.pk}/delete", {"confirm": labelled.name}, follow=True)
    assert "This run has 1 labels by 1 annotator(s)" in [str(m) for m in response.context["messages"]][0]
    assert Run.objects.filter(pk=labelled.pk).exists() and Label.objects.count() == 1

    owner_client.post(f"/runs/{labelled.pk}/delete", {"confirm": labelled.name, "delete_labels": "1"})
    assert not Run.objects.filter(pk=labelled.pk).exists() and Label.objects.count() == 0


def test_deleting_a_team_deletes_its_runs_folders_too(finished, team, django_capture_on_commit_callbacks):
    assert finished.path.exists()

    with django_capture_on_commit_callbacks(execute=True):
        team.delete()  # as the Django admin does: a cascade, no run.delete() of ours

    assert not Run.objects.filter(pk=finished.pk).exists() and not finished.path.exists()


def test_a_run_folder_outside_runs_root_is_never_deleted(finished, tmp_path, django_capture_on_commit_callbacks):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Run.objects.filter(pk=finished.pk).update(run_dir=str(outside))

    with django_capture_on_commit_callbacks(execute=True):
        Run.objects.filter(pk=finished.pk).delete()

    assert outside.exists()


def test_it_refuses_to_delete_an_active_run(owner_client, run):
    run.path.mkdir(parents=True)

    response = owner_client.post(f"/runs/{run.pk}/delete", {"confirm": run.name}, follow=True)

    assert "Cancel the run before deleting it" in [str(m) for m in response.context["messages"]][0]
    assert Run.objects.filter(pk=run.pk).exists() and run.path.exists()


def test_it_never_deletes_outside_runs_root(finished, tmp_path):
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    Run.objects.filter(pk=finished.pk).update(run_dir=str(elsewhere))
    finished.refresh_from_db()

    services.delete_run(finished)

    assert elsewhere.exists()


@pytest.mark.parametrize("who,status", [("outsider", 404), ("annotator", 403)])
def test_it_refuses_users_who_may_not_delete(client, finished, who, status, request):
    client.force_login(request.getfixturevalue(who))

    assert client.post(f"/runs/{finished.pk}/delete", {"confirm": finished.name}).status_code == status
    assert Run.objects.filter(pk=finished.pk).exists()


def test_retention_prunes_old_checkpoints_but_the_latest(finished, settings):
    settings.RUN_RETENTION_DAYS = 7
    assert services.apply_retention() == {"runs": 0, "checkpoints": 0}  # finished just now

    result = services.apply_retention(now=timezone.now() + timedelta(days=8))

    assert result == {"runs": 1, "checkpoints": 2}
    assert [c["name"] for c in services.checkpoints(finished)] == ["step-000003"]
    left = [f for f in finished.path.rglob("*") if f.is_file()]
    assert Run.objects.get(pk=finished.pk).disk_bytes == sum(f.stat().st_size for f in left)


def test_retention_is_off_by_default(finished):
    assert services.apply_retention(now=timezone.now() + timedelta(days=10000)) == {"runs": 0, "checkpoints": 0}
