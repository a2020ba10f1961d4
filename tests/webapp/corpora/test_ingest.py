"""The ingest service: spell.data's pipeline on a corpus's files, stored all or nothing."""

from __future__ import annotations

import pytest

from tests.webapp.corpora.files import SAMPLE_CORPUS, jsonl, long_text, upload, zip_bytes
from webapp.corpora import services
from webapp.corpora.models import Cluster, Corpus, Document, UploadIssue
from workers.ingest_tasks import ingest_corpus

pytestmark = pytest.mark.django_db


def no_tokenizer():
    return None, "no model named 'x' is registered"


def make_corpus(team, files, **options) -> Corpus:
    corpus = services.create_corpus_upload(team, "c", files, options=options or None)
    return corpus


def test_it_ingests_the_sample_corpus(team):
    corpus = services.create_corpus_from_paths(team, "Sample", [SAMPLE_CORPUS])

    assert corpus.status == Corpus.Status.READY, corpus.error
    assert corpus.stats["documents"] == 38
    assert {c.key: c.size for c in corpus.clusters.all()} == {"harrowmere": 10, "corvane": 10, "osmir": 10, "tessellate": 8}
    assert corpus.clusters.get(key="corvane").numeric
    assert corpus.clusters.filter(given=True).count() == 4
    assert corpus.documents.count() == 38
    assert sum(b["count"] for b in corpus.stats["length_histogram"]) == 38
    assert corpus.disk_bytes > 0 and corpus.upload_folder.is_dir()
    assert corpus.finished_at is not None


def test_it_says_when_tokens_are_an_estimate(team):
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(4))])
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.stats["token_estimate"] is True
    assert corpus.stats["notes"][0] == "No model tokenizer: no model named 'x' is registered."
    assert corpus.stats["token_counter"].startswith("whitespace estimate")


def test_it_counts_tokens_with_the_default_models_tokenizer(team, settings, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from webapp.runs.models import ModelEntry

    words = sorted({w for i in range(4) for w in long_text(i).split()})
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]", *words])}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(tmp_path / "model")
    ModelEntry.objects.create(name=settings.DEFAULT_MODEL_NAME, path=str(tmp_path / "model"))
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(4))])

    services.run_ingest(corpus)

    corpus.refresh_from_db()
    assert corpus.stats["token_estimate"] is False
    assert corpus.stats["token_counter"] == f"tokenizer {settings.DEFAULT_MODEL_NAME}"
    assert corpus.stats["tokens"] == 4 * 80  # one token per whitespace word with this vocabulary
    assert sorted(corpus.documents.values_list("tokens", flat=True)) == [80] * 4


def test_it_falls_back_to_the_estimate_when_the_model_folder_is_gone(team, settings, tmp_path):
    from webapp.runs.models import ModelEntry

    ModelEntry.objects.create(name=settings.DEFAULT_MODEL_NAME, path=str(tmp_path / "missing"))

    tokenizer, note = services.load_default_tokenizer()

    assert tokenizer is None and "missing" in note


def test_bad_files_get_a_message_each_and_do_not_stop_the_good_ones(team):
    files = [
        upload("good.jsonl", jsonl(5)),
        upload("binary.txt", b"\x00\x01\x02" * 100),
        upload("broken.zip", b"PK\x03\x04 this is not really a zip"),
        upload("broken.pdf", b"%PDF-1.4 garbage"),
        upload("nested.zip", zip_bytes({"../evil.txt": long_text(3), "inner.txt": long_text(40)})),
    ]
    corpus = make_corpus(team, files)
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.status == Corpus.Status.READY
    issues = {(i.filename, i.code) for i in corpus.issues.filter(stage=UploadIssue.Stage.INGEST)}
    assert issues == {("binary.txt", "not_text"), ("broken.zip", "corrupt"), ("broken.pdf", "corrupt"),
                      ("nested.zip/../evil.txt", "unsafe_path")}
    assert corpus.documents.count() == 6  # five lines of good.jsonl and nested.zip/inner.txt
    assert corpus.stats["files_with_errors"] == 4


def test_it_drops_near_duplicates_and_lists_them(team):
    text = long_text(1, words=120)
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(3)), upload("dup.txt", text.replace("lantern31", "lantern99", 1)),
                                upload("orig.txt", text)])
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.stats["dropped_duplicates"] >= 1
    assert corpus.stats["dropped"][0]["reason"] in ("near_duplicate", "exact_duplicate")


def test_a_corpus_with_no_readable_document_fails_with_its_reasons(team):
    corpus = make_corpus(team, [upload("x.txt", b"\x00" * 50)])
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.status == Corpus.Status.FAILED
    assert "No document could be read" in corpus.error
    assert corpus.issues.get().code == "not_text"


def test_a_crash_marks_failed_and_leaves_no_documents(team, monkeypatch):
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(4))])
    Corpus.objects.filter(pk=corpus.pk).update(status=Corpus.Status.PENDING)
    real_bulk_create = Document.objects.bulk_create

    def crash_midway(objs, **kwargs):
        objs = list(objs)
        real_bulk_create(objs[:2], **kwargs)  # some rows are written, then the write fails
        raise RuntimeError("database went away")

    monkeypatch.setattr(Document.objects, "bulk_create", crash_midway)
    monkeypatch.setattr(services, "load_default_tokenizer", no_tokenizer)
    result = ingest_corpus.apply(args=[corpus.pk]).get()

    corpus.refresh_from_db()
    assert result["status"] == "failed"
    assert corpus.status == Corpus.Status.FAILED
    assert "database went away" in corpus.error
    assert Document.objects.filter(corpus=corpus).count() == 0
    assert Cluster.objects.filter(corpus=corpus).count() == 0


def test_an_ingest_past_its_time_limit_fails_with_what_to_do(team, monkeypatch, settings):
    from celery.exceptions import SoftTimeLimitExceeded

    from workers.ingest_tasks import ingest_eval_set

    corpus = make_corpus(team, [upload("a.jsonl", jsonl(4))])
    Corpus.objects.filter(pk=corpus.pk).update(status=Corpus.Status.PENDING)

    def too_slow(corpus):
        raise SoftTimeLimitExceeded()  # what Celery raises inside the task at its soft limit

    monkeypatch.setattr(services, "run_ingest", too_slow)
    result = ingest_corpus.apply(args=[corpus.pk]).get()

    corpus.refresh_from_db()
    assert result["status"] == "failed" and corpus.status == Corpus.Status.FAILED
    minutes = settings.INGEST_TIME_LIMIT_SECONDS / 60
    assert f"took longer than {minutes:.0f} minutes (INGEST_TIME_LIMIT_SECONDS)" in corpus.error
    assert "Split the upload" in corpus.error and Document.objects.filter(corpus=corpus).count() == 0
    for task in (ingest_corpus, ingest_eval_set):  # the limits the worker enforces
        assert (task.soft_time_limit, task.time_limit) == (settings.INGEST_TIME_LIMIT_SECONDS,
                                                           settings.INGEST_TIME_LIMIT_SECONDS + 60)


def test_the_task_skips_a_corpus_that_is_not_pending(team):
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(2))])
    Corpus.objects.filter(pk=corpus.pk).update(status=Corpus.Status.INGESTING)

    assert ingest_corpus.apply(args=[corpus.pk]).get() == {"corpus": corpus.pk, "skipped": "not pending"}


def test_progress_is_saved_on_the_corpus_row(team):
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(6))])
    seen = []
    recorder = services.ProgressRecorder(corpus, interval=0)

    def spy(stage, done, total):
        recorder(stage, done, total)
        row = Corpus.objects.get(pk=corpus.pk)
        seen.append((row.progress_stage, row.progress_done, row.progress_total))

    services.run_ingest(corpus, tokenizer_loader=no_tokenizer, progress=spy)

    stages = [s for s, _, _ in seen]
    assert stages[0] == "tokenizer"
    for stage in ("read", "normalize", "dedup", "tokens", "numeric", "cluster"):
        assert stage in stages
    assert ("tokens", 6, 6) in seen


def test_deleting_a_corpus_during_its_ingest_stops_it(team):
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(6))])
    recorder = services.ProgressRecorder(corpus, interval=0)

    def delete_on_dedup(stage, done, total):
        if stage == "dedup":
            Corpus.objects.filter(pk=corpus.pk).delete()
        recorder(stage, done, total)

    with pytest.raises(services.CorpusGone):
        services.run_ingest(corpus, tokenizer_loader=no_tokenizer, progress=delete_on_dedup)
    assert Document.objects.count() == 0


def test_the_options_reach_the_pipeline(team):
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(12))], cluster_size=3, dedup_threshold=0.9, min_chars=100_000)
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.status == Corpus.Status.FAILED  # every document is shorter than 100,000 characters
    assert corpus.stats["dropped_length"] == 12


def test_a_corpus_leaves_out_documents_that_copy_the_teams_evaluation_sets(team, client, django_user_model):
    import json

    from tests.webapp.corpora.files import SAMPLE_EVAL
    from webapp.accounts.models import Membership
    from webapp.corpora.models import EvalSet
    from workers.ingest_tasks import ingest_eval_set

    path = SAMPLE_EVAL / "longbench_qa_sample.jsonl"
    eval_set = services.create_eval_set_upload(team, "qa", upload(path.name, path.read_bytes()))
    ingest_eval_set.apply(args=[eval_set.pk]).get()
    assert EvalSet.objects.get(pk=eval_set.pk).status == EvalSet.Status.READY
    context = json.loads(path.read_text().splitlines()[0])["context"]
    planted = json.dumps({"text": "Copied for training. " + context[:2000], "title": "planted"}) + "\n"
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(4) + planted)])
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.stats["documents"] == 4 and corpus.stats["dropped_contaminated"] == 1
    assert [d["reason"] for d in corpus.stats["dropped"]] == ["contaminated"]
    assert not corpus.documents.filter(title="planted").exists()
    user = django_user_model.objects.create_user("reader", password="pw-12345678")
    Membership.objects.create(user=user, team=team, role=Membership.Role.MEMBER)
    client.force_login(user)
    page = client.get(f"/corpora/{corpus.pk}/").content.decode()
    assert "1 dropped as copies of an evaluation set" in page
    assert "grouped by meaning: sentence embeddings" in page  # the default for an upload


def test_the_titles_of_documents_dropped_as_evaluation_text_are_listed_before_other_drops(team, client, django_user_model,
                                                                                       monkeypatch):
    import json

    from tests.webapp.corpora.files import SAMPLE_EVAL
    from webapp.accounts.models import Membership
    from workers.ingest_tasks import ingest_eval_set

    monkeypatch.setattr(services, "_DROPPED_KEPT", 2)  # the page keeps 2 of the 4 dropped
    path = SAMPLE_EVAL / "longbench_qa_sample.jsonl"
    eval_set = services.create_eval_set_upload(team, "qa", upload(path.name, path.read_bytes()))
    ingest_eval_set.apply(args=[eval_set.pk]).get()
    context = json.loads(path.read_text().splitlines()[0])["context"]
    planted = json.dumps({"text": "Copied for training. " + context[:2000], "title": "Planted copy"}) + "\n"
    corpus = make_corpus(team, [upload("a.jsonl", jsonl(4) + jsonl(2) + "".join(
        json.dumps({"text": "short", "title": "Short"}) + "\n" for _ in range(1)) + planted)])
    services.run_ingest(corpus, tokenizer_loader=no_tokenizer)

    corpus.refresh_from_db()
    assert corpus.stats["dropped_total"] == 4  # 2 exact duplicates, 1 too short, 1 copy of the evaluation set
    assert [d["title"] for d in corpus.stats["dropped"]] == ["Planted copy", "Short"]
    user = django_user_model.objects.create_user("reader", password="pw-12345678")
    Membership.objects.create(user=user, team=team, role=Membership.Role.MEMBER)
    client.force_login(user)
    page = client.get(f"/corpora/{corpus.pk}/").content.decode()
    assert "<td>Planted copy</td>" in page and "contaminated" in page
