"""The corpus form's embedding model (the bundled one, a folder under MODEL_ROOT or a registered
model; never a typed path) reaches the ingest, and the embedding stage's progress reaches the page."""

from __future__ import annotations

import shutil

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.spell.data.tiny_embedder import make_embedding_folder
from tests.webapp.corpora.files import jsonl, upload
from webapp.corpora import services
from webapp.corpora.models import Corpus

pytestmark = pytest.mark.django_db
URL = "/corpora/upload/"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_embedding_folder(tmp_path_factory.mktemp("embedders") / "tiny-bert")


@pytest.fixture
def model_root(settings, tmp_path, tiny_folder):
    settings.MODEL_ROOT = tmp_path / "models"
    shutil.copytree(tiny_folder, settings.MODEL_ROOT / "org" / "tiny-bert")
    (settings.MODEL_ROOT / "no-tokenizer").mkdir()
    (settings.MODEL_ROOT / "no-tokenizer" / "config.json").write_text('{"model_type": "bert"}')
    return settings.MODEL_ROOT


def post(client, team, **extra):
    return client.post(URL, {"name": "c", "team": team.pk, "files": [upload("a.jsonl", jsonl(12))], "cluster_size": 6,
                             "dedup_threshold": 0.8, "min_chars": 100, **extra})


def no_tokenizer():
    return None, "no tokenizer in tests"


def test_the_form_offers_the_embedding_folders_under_the_model_root_and_registered_ones(member_client, model_root,
                                                                                      tiny_folder, tmp_path):
    from webapp.runs.models import ModelEntry

    ModelEntry.objects.create(name="registered-embedder", path=str(tiny_folder))
    ModelEntry.objects.create(name="hub-id", path="org/not-a-local-folder")
    choices = [value for value, _ in member_client.get(URL).context["form"].fields["clustering"].choices]

    assert choices == ["embeddings", "model:registered-embedder", "folder:org/tiny-bert", "tfidf"]


def test_a_chosen_folder_is_stored_and_a_typed_path_is_refused(member_client, team, model_root, django_capture_on_commit_callbacks):
    for typed in ("folder:../../etc", "folder:no-tokenizer", "/etc", str(model_root / "org" / "tiny-bert")):
        response = post(member_client, team, clustering=typed)
        assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not Corpus.objects.exists()

    with django_capture_on_commit_callbacks(execute=False):
        assert post(member_client, team, clustering="folder:org/tiny-bert").status_code == 302
    assert Corpus.objects.get().options["embedding_model"] == "folder:org/tiny-bert"
    assert Corpus.objects.get().options["clustering"] == "embeddings"


def test_the_ingest_embeds_with_the_chosen_folder_and_the_page_says_which(member_client, team, model_root):
    corpus = services.create_corpus_upload(team, "c", [upload("a.jsonl", jsonl(12))],
                                           options={"cluster_size": 6, "embedding_model": "folder:org/tiny-bert"})
    embedder = services.ingest_options(corpus.options).clustering.embedder
    assert embedder.folder == model_root / "org" / "tiny-bert"
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.status == Corpus.Status.READY, corpus.error
    assert corpus.stats["embedding_model"] == "org/tiny-bert"
    assert sum(c.size for c in corpus.clusters.all()) == corpus.stats["documents"] > 0
    assert "grouped by meaning: sentence embeddings of org/tiny-bert" in member_client.get(f"/corpora/{corpus.pk}/").content.decode()


def test_a_folder_gone_or_broken_since_the_upload_fails_the_ingest_clearly(team, model_root):
    corpus = services.create_corpus_upload(team, "c", [upload("a.jsonl", jsonl(12))],
                                           options={"embedding_model": "folder:org/tiny-bert"})
    (model_root / "org" / "tiny-bert" / "tokenizer.json").unlink()
    (model_root / "org" / "tiny-bert" / "vocab.txt").unlink()
    with pytest.raises(ValueError, match="'org/tiny-bert' chosen at upload cannot be used: tiny-bert has no tokenizer"):
        services.run_ingest(corpus, tokenizer_loader=no_tokenizer)
    for value in ("folder:../outside", "folder:/etc", "model:nobody", "path:/etc"):
        with pytest.raises(ValueError):
            services.resolve_embedding_choice(value)


def test_the_status_json_carries_documents_embedded_during_the_embedding_stage(member_client, team, model_root):
    corpus = services.create_corpus_upload(team, "c", [upload("a.jsonl", jsonl(70))],
                                           options={"cluster_size": 20, "embedding_model": "folder:org/tiny-bert"})
    Corpus.objects.filter(pk=corpus.pk).update(status=Corpus.Status.INGESTING)
    recorder = services.ProgressRecorder(corpus, interval=0)
    polled, pages = [], []

    def spy(stage, done, total):
        recorder(stage, done, total)
        if stage == "embed":
            polled.append(member_client.get(f"/corpora/{corpus.pk}/status.json").json())
            if done and not pages:
                pages.append(member_client.get(f"/corpora/{corpus.pk}/").content.decode())

    services.run_ingest(corpus, tokenizer_loader=no_tokenizer, progress=spy)
    corpus.refresh_from_db()

    total = corpus.stats["documents"]  # those left after dedup: 61 of the 70
    assert total > 32
    assert [(p["stage"], p["done"], p["total"]) for p in polled] == [("embed", n, total) for n in (0, 32, 64) if n < total] + [("embed", total, total)]
    assert f'<progress id="embed-bar" max="{total}" value="32">' in pages[0]
    assert 'id="embed-progress" hidden' not in pages[0]


def test_progress_writes_are_throttled_to_about_two_a_second(team):
    corpus = services.create_corpus_upload(team, "c", [upload("a.jsonl", jsonl(2))])
    now = [0.0]
    recorder = services.ProgressRecorder(corpus, clock=lambda: now[0])
    with CaptureQueriesContext(connection) as queries:
        recorder("embed", 0, 1000)  # a new stage: written
        for done in range(10, 1000, 10):  # 99 batches over 4.95 seconds
            now[0] += 0.05
            recorder("embed", done, 1000)
        recorder("embed", 1000, 1000)  # the stage's end: written
    writes = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert 10 <= len(writes) <= 12  # the start, one every 0.5 s, the end
    assert Corpus.objects.get(pk=corpus.pk).progress_done == 1000
