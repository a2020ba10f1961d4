"""The corpus upload page: per-file checks, stored files, the queued ingest, access."""

from __future__ import annotations

import pytest
from tests.webapp.corpora.files import jsonl, long_text, upload, zip_bytes
from django.urls import reverse

from webapp.corpora.models import Corpus

URL = "/corpora/upload/"


def post(client, team, files, name="My corpus", **extra):
    data = {"name": name, "team": team.pk, "files": files, "cluster_size": 20, "dedup_threshold": 0.8,
            "min_chars": 100, **extra}
    return client.post(URL, data)


def test_it_shows_the_form_with_the_member_teams_only(member_client, team, other_team):
    response = member_client.get(URL)

    assert response.status_code == 200
    choices = [str(c[1]) for c in response.context["form"].fields["team"].choices]
    assert choices == ["Lab"]


def test_it_redirects_anonymous_users_to_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_it_says_405_to_other_methods(member_client):
    assert member_client.put(URL).status_code == 405


def test_it_stores_good_files_and_queues_the_ingest(member_client, team, member, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(member_client, team, [upload("a.jsonl", jsonl(3)), upload("b.txt", long_text(9))])

    corpus = Corpus.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("corpora:detail", args=[corpus.pk])
    assert corpus.team == team and corpus.created_by == member and corpus.status == Corpus.Status.PENDING
    assert sorted(p.name for p in corpus.upload_folder.iterdir()) == ["a.jsonl", "b.txt"]
    assert corpus.upload_folder.is_relative_to(media_root / "corpora" / str(corpus.pk))
    assert corpus.disk_bytes == sum(p.stat().st_size for p in corpus.upload_folder.iterdir())
    assert corpus.options == {"cluster_size": 20, "dedup_threshold": 0.8, "min_chars": 100, "clustering": "embeddings"}
    assert len(callbacks) == 1  # the ingest task, sent once the upload is committed


def test_files_left_under_the_new_corpus_id_are_moved_aside_not_mixed_in(member_client, team, media_root, monkeypatch):
    """The database was reset while MEDIA_ROOT was kept: the new corpus's id names a folder from
    before, holding a file of the same name. The upload neither fails (it answered 500) nor ingests
    the stale file. (The folder is made as the row is created: which id that is differs between
    SQLite, which reuses ids, and PostgreSQL's sequences.)"""
    create = Corpus.objects.create

    def create_over_a_stale_folder(**fields):
        corpus = create(**fields)
        corpus.upload_folder.mkdir(parents=True)
        (corpus.upload_folder / "a.jsonl").write_text("stale\n")
        (corpus.upload_folder / "old.txt").write_text("stale\n")
        return corpus

    monkeypatch.setattr(Corpus.objects, "create", create_over_a_stale_folder)
    response = post(member_client, team, [upload("a.jsonl", jsonl(3))])

    corpus = Corpus.objects.get()
    assert response.status_code == 302
    assert [p.name for p in corpus.upload_folder.iterdir()] == ["a.jsonl"]
    assert (corpus.upload_folder / "a.jsonl").read_text() == jsonl(3)
    (aside,) = [p for p in (media_root / "corpora").iterdir() if p.name != str(corpus.pk)]
    assert aside.name.startswith(f"{corpus.pk}.stale-") and (aside / "uploads" / "old.txt").read_text() == "stale\n"


def test_it_reports_bad_files_one_by_one_and_keeps_the_good_ones(member_client, team, settings):
    settings.UPLOAD_MAX_FILE_BYTES = 2000
    files = [
        upload("good.jsonl", jsonl(2)),
        upload("slides.pptx", b"PK\x03\x04 not for us"),
        upload("empty.txt", b""),
        upload("huge.txt", "word " * 1000),
        upload("copy.jsonl", jsonl(2)),  # same bytes as good.jsonl
    ]
    response = post(member_client, team, files)

    corpus = Corpus.objects.get()
    assert response.status_code == 302
    issues = {i.filename: i.code for i in corpus.issues.all()}
    assert issues == {"slides.pptx": "unsupported_type", "empty.txt": "empty", "huge.txt": "too_large",
                      "copy.jsonl": "duplicate_file"}
    assert [p.name for p in corpus.upload_folder.iterdir()] == ["good.jsonl"]
    page = member_client.get(response["Location"]).content.decode()
    assert "over the 0.0 MiB limit" in page or "limit per file" in page
    assert "same content as good.jsonl" in page


def test_it_stores_nothing_when_no_file_is_usable(member_client, team, media_root):
    response = post(member_client, team, [upload("a.exe", b"MZ"), upload("b.txt", b"")])

    assert response.status_code == 400
    assert Corpus.objects.count() == 0
    assert not (media_root / "corpora").exists() or not any((media_root / "corpora").iterdir())
    page = response.content.decode()
    assert "None of the files can be used" in page
    assert "a.exe" in page and "b.txt" in page


def test_it_refuses_too_many_files(member_client, team, settings):
    settings.UPLOAD_MAX_FILES = 2
    response = post(member_client, team, [upload(f"{i}.txt", long_text(i)) for i in range(3)])

    assert response.status_code == 400
    assert "the limit is 2" in response.content.decode()
    assert Corpus.objects.count() == 0


def test_far_too_many_files_get_the_styled_page_with_the_limit_not_a_bare_400(member_client, team, settings):
    settings.UPLOAD_MAX_FILES = 2
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3  # as settings.py derives it: one over reaches the form
    response = post(member_client, team, [upload(f"{i}.txt", long_text(i)) for i in range(5)])

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="request-refused"' in page and "at most 2 files are accepted" in page
    assert Corpus.objects.count() == 0


def test_a_request_over_the_total_size_cap_is_refused_before_its_body_is_read(member_client, team, settings,
                                                                               monkeypatch):
    from django.http.multipartparser import MultiPartParser

    settings.UPLOAD_MAX_REQUEST_BYTES = 50_000
    parsed = []
    monkeypatch.setattr(MultiPartParser, "parse", lambda self: parsed.append(1) or ({}, {}))  # never reached
    response = post(member_client, team, [upload(f"{i}.txt", long_text(i) * 40) for i in range(3)])

    assert response.status_code == 413 and parsed == []
    page = response.content.decode()
    assert "one upload may send at most 48.8 KiB in all (and 200 MiB per file)" in page
    assert "Split the files into several uploads" in page
    assert Corpus.objects.count() == 0
    api = member_client.post("/runs/api/runs", data="x" * 60_000, content_type="application/json")
    assert api.status_code == 413 and "at most" in api.json()["error"]


def test_the_allowed_number_of_files_is_in_line_with_the_upload_limit():
    from django.conf import settings

    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == settings.UPLOAD_MAX_FILES + 1


def test_it_keeps_path_traversal_names_inside_the_corpus_folder(member_client, team, media_root):
    files = [upload("../../../escape.txt", long_text(1)), upload("..\\..\\win.md", "# T\n\n" + long_text(2)),
             upload("/etc/cron.d/x.jsonl", jsonl(1, start=5))]
    post(member_client, team, files)

    corpus = Corpus.objects.get()
    names = sorted(p.name for p in corpus.upload_folder.iterdir())
    assert names == ["escape.txt", "win.md", "x.jsonl"]
    everything = {p.resolve() for p in media_root.parent.rglob("*") if p.is_file()}
    assert everything <= {p.resolve() for p in corpus.upload_folder.iterdir()}


def test_it_gives_files_with_the_same_name_distinct_names(member_client, team):
    post(member_client, team, [upload("doc.txt", long_text(1)), upload("sub/doc.txt", long_text(2))])

    corpus = Corpus.objects.get()
    assert sorted(p.name for p in corpus.upload_folder.iterdir()) == ["doc-2.txt", "doc.txt"]


def test_it_accepts_a_zip(member_client, team):
    post(member_client, team, [upload("bundle.zip", zip_bytes({"a.txt": long_text(1), "b.jsonl": jsonl(2)}))])

    assert [p.name for p in Corpus.objects.get().upload_folder.iterdir()] == ["bundle.zip"]


def test_it_refuses_a_name_the_team_already_uses(member_client, team):
    Corpus.objects.create(team=team, name="Taken")

    response = post(member_client, team, [upload("a.txt", long_text(1))], name="Taken")

    assert response.status_code == 400
    assert "already has one named" in response.content.decode()
    assert Corpus.objects.count() == 1


def test_it_refuses_a_team_the_user_is_not_a_member_of(member_client, other_team):
    response = post(member_client, other_team, [upload("a.txt", long_text(1))])

    assert response.status_code == 400
    assert Corpus.objects.count() == 0


def test_it_refuses_annotators(client, annotator, team):
    client.force_login(annotator)

    response = post(client, team, [upload("a.txt", long_text(1))])

    assert response.status_code == 403 and "needs a member" in response.content.decode()
    assert Corpus.objects.count() == 0


def test_it_validates_the_pipeline_options(member_client, team):
    response = post(member_client, team, [upload("a.txt", long_text(1))], dedup_threshold=1.5, cluster_size=1)

    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"dedup_threshold", "cluster_size"}


@pytest.mark.django_db
def test_it_leaves_no_folder_when_storing_fails(team, media_root, monkeypatch):
    from webapp.corpora import services

    def broken(upload, target):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(services, "_save_stream", broken)
    with pytest.raises(OSError):
        services.create_corpus_upload(team, "x", [upload("a.txt", long_text(1))])

    assert Corpus.objects.count() == 0
    assert not any((media_root / "corpora").rglob("*.txt"))


def test_an_unreachable_broker_fails_the_corpus_clearly(member_client, team, monkeypatch, django_capture_on_commit_callbacks):
    from kombu.exceptions import OperationalError

    from webapp import taskqueue

    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis")

    monkeypatch.setattr(taskqueue.app, "send_task", down)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(member_client, team, [upload("a.txt", long_text(1))])

    corpus = Corpus.objects.get()
    assert response.status_code == 302
    assert corpus.status == Corpus.Status.FAILED and "broker (Redis) is unreachable" in corpus.error
