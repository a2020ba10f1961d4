"""A real Celery worker ingests uploads: the sample corpus end to end, and a bad upload fails
cleanly. The upload is committed (transactional_db), so the task is sent on commit as in
production."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.support import WorkerProcess, child_env
from webapp import task_names
from webapp.accounts.models import Team
from webapp.corpora import services
from webapp.corpora.models import Corpus

SAMPLE_CORPUS = Path(__file__).resolve().parents[2] / "samples" / "corpus"


@pytest.fixture
def media_worker(transactional_db, settings, tmp_path):
    """A worker whose MEDIA_ROOT is this test's (the files the upload stores are the ones it reads)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    worker = WorkerProcess(env=child_env(MEDIA_ROOT=settings.MEDIA_ROOT)).start()
    yield worker
    worker.stop()


def wait_finished(corpus: Corpus, timeout: float = 120) -> list[tuple[str, str]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        corpus.refresh_from_db()
        if (corpus.status, corpus.progress_stage) not in seen:
            seen.append((corpus.status, corpus.progress_stage))
        if corpus.is_finished:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the ingest did not finish in {timeout}s; saw {seen}")


def test_a_real_worker_ingests_the_sample_corpus(media_worker):
    team = Team.objects.create(name="Lab", slug="lab")
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(SAMPLE_CORPUS.iterdir()) if p.is_file()]

    corpus = services.create_corpus_upload(team, "Sample", files)
    seen = wait_finished(corpus)

    assert corpus.status == Corpus.Status.READY, (corpus.error, media_worker.log()[-3000:])
    assert corpus.stats["documents"] == 38 and corpus.documents.count() == 38
    assert {c.key for c in corpus.clusters.all()} == {"harrowmere", "corvane", "osmir", "tessellate"}
    assert corpus.progress_stage == "done"
    assert any(status == "ingesting" for status, _ in seen)  # the page had progress to show
    assert task_names.INGEST_CORPUS in media_worker.log()


def test_a_real_worker_fails_a_corpus_with_no_readable_file_and_keeps_nothing(media_worker):
    team = Team.objects.create(name="Lab", slug="lab")

    corpus = services.create_corpus_upload(team, "Bad", [SimpleUploadedFile("x.txt", b"\x00\x01" * 64),
                                                          SimpleUploadedFile("y.zip", b"PK\x03\x04 broken")])
    wait_finished(corpus)

    assert corpus.status == Corpus.Status.FAILED
    assert corpus.documents.count() == 0 and corpus.clusters.count() == 0
    assert {(i.filename, i.code) for i in corpus.issues.all()} == {("x.txt", "not_text"), ("y.zip", "corrupt")}
