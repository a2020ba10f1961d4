"""Deleting a corpus or an eval set: confirmation, rows and files gone, access."""

from __future__ import annotations

import pytest

from tests.webapp.corpora.files import SAMPLE_CORPUS, SAMPLE_EVAL, jsonl, upload
from webapp.corpora import services
from webapp.corpora.models import Corpus, Document, EvalSet


@pytest.fixture
def corpus(team):
    return services.create_corpus_from_paths(team, "Sample", [SAMPLE_CORPUS])


def test_it_asks_for_confirmation_first(member_client, corpus):
    response = member_client.get(f"/corpora/{corpus.pk}/delete/")

    assert response.status_code == 200
    assert "38 documents" in response.content.decode()
    assert Corpus.objects.filter(pk=corpus.pk).exists()


def test_it_deletes_the_rows_and_the_files(member_client, corpus, django_capture_on_commit_callbacks):
    folder = corpus.folder
    assert folder.is_dir()

    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(f"/corpora/{corpus.pk}/delete/")

    assert response.status_code == 302 and response["Location"] == "/corpora/"
    assert not Corpus.objects.filter(pk=corpus.pk).exists()
    assert Document.objects.count() == 0
    assert not folder.exists()


def test_deleting_a_team_deletes_its_corpus_files(team, corpus, django_capture_on_commit_callbacks):
    folder = corpus.folder

    with django_capture_on_commit_callbacks(execute=True):
        team.delete()

    assert not folder.exists()


def test_outsiders_cannot_delete(client, outsider, corpus):
    client.force_login(outsider)

    assert client.post(f"/corpora/{corpus.pk}/delete/").status_code == 404
    assert Corpus.objects.filter(pk=corpus.pk).exists()
    assert corpus.folder.is_dir()


def test_the_index_shows_disk_usage_per_corpus(member_client, corpus):
    page = member_client.get("/corpora/").content.decode()

    assert corpus.disk_bytes > 40_000
    assert "KB" in page


def test_it_deletes_an_eval_set_and_its_files(member_client, team, django_capture_on_commit_callbacks):
    path = SAMPLE_EVAL / "docmath_sample.json"
    eval_set = services.create_eval_set_upload(team, "Math", upload(path.name, path.read_bytes()))
    folder = eval_set.folder
    assert folder.is_dir()

    assert member_client.get(f"/corpora/evalsets/{eval_set.pk}/delete/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(f"/corpora/evalsets/{eval_set.pk}/delete/")

    assert not EvalSet.objects.exists()
    assert not folder.exists()


@pytest.mark.django_db
def test_a_rolled_back_delete_keeps_the_files(team):
    from django.db import transaction

    corpus = services.create_corpus_upload(team, "Keep", [upload("a.jsonl", jsonl(2))])
    try:
        with transaction.atomic():
            Corpus.objects.get(pk=corpus.pk).delete()
            raise RuntimeError("rollback")
    except RuntimeError:
        pass

    assert Corpus.objects.filter(pk=corpus.pk).exists()
    assert corpus.upload_folder.is_dir()
