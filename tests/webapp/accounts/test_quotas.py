"""A team's queued-run and disk quotas (webapp/quotas.py): launches through the form and the API past
the queued quota and uploads past the disk quota are refused with a message and store nothing; the
team page shows the usage and sets the quotas."""

from __future__ import annotations

import pytest

from tests.webapp.corpora.files import long_text, upload
from tests.webapp.runs.factories import make_corpus, make_run
from tests.webapp.runs.test_launch import post_data
from webapp.corpora.models import Corpus, EvalSet
from webapp.runs.models import ModelEntry, Run


@pytest.fixture
def model_entry(db):
    return ModelEntry.objects.create(name="tiny", path="var/models/tiny", max_positions=8192)


@pytest.fixture
def corpus(people):
    return make_corpus(people.team)


def test_a_launch_past_the_queued_run_quota_is_refused_by_the_form_and_the_api(client, people, corpus, model_entry):
    people.team.queued_run_quota = 1
    people.team.save()
    make_run(people.team, corpus, model_entry, name="first", user=people.owner)
    client.force_login(people.owner)

    api = client.post("/runs/api/runs", {"name": "second", "corpus": corpus.pk, "model": "tiny"},
                      content_type="application/json")
    assert api.status_code == 409 and "1 runs waiting in the queue, its limit (1)" in api.json()["error"]
    page = client.post("/runs/new", post_data(corpus, model_entry, name="third"))
    assert page.status_code == 200 and "its limit (1)" in page.content.decode()
    assert list(Run.objects.values_list("name", flat=True)) == ["first"]


def test_an_upload_past_the_disk_quota_is_refused_and_stores_nothing(client, people, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    people.team.disk_quota_gib = 1
    people.team.save()
    Corpus.objects.create(team=people.team, name="Big", disk_bytes=(1 << 30) - 1000)  # 1 KB left
    client.force_login(people.owner)

    response = client.post("/corpora/upload/", {"name": "More", "team": people.team.pk, "cluster_size": 20,
                                                "dedup_threshold": 0.8, "min_chars": 100,
                                                "files": [upload("a.txt", long_text(1) * 10)]})
    assert response.status_code == 400 and "of its 1 GiB disk quota" in response.content.decode()
    assert not Corpus.objects.filter(name="More").exists()
    evalset = client.post("/corpora/evalsets/upload/", {"name": "Set", "team": people.team.pk,
                                                        "file": upload("set.jsonl", "x" * 5000)})
    assert evalset.status_code == 400 and "disk quota" in evalset.content.decode()
    assert not EvalSet.objects.exists()
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.txt"))


def test_the_team_page_shows_the_usage_and_sets_the_quotas(admin_client, people, corpus, model_entry):
    make_run(people.team, corpus, model_entry, user=people.owner)
    Corpus.objects.filter(pk=corpus.pk).update(disk_bytes=3 << 20)

    page = admin_client.get(f"/accounts/teams/{people.team.pk}/").content.decode()
    assert 'id="usage-queued">1<' in page and "3.0\xa0MB" in page and "no limit" in page

    admin_client.post(f"/accounts/teams/{people.team.pk}/quota/", {"quota": 4, "queued": 7, "disk_gib": 50})
    people.team.refresh_from_db()
    assert (people.team.concurrent_run_quota, people.team.queued_run_quota, people.team.disk_quota_gib) == (4, 7, 50)
    assert "(0% used)" in admin_client.get(f"/accounts/teams/{people.team.pk}/").content.decode()
