"""Index, detail (progress, stats, charts), status JSON, cluster browser and document pages."""

from __future__ import annotations

import json

import pytest

from tests.webapp.corpora.files import SAMPLE_CORPUS, jsonl, upload
from webapp.corpora import services
from webapp.corpora.models import Corpus


@pytest.fixture
def sample(team):
    return services.create_corpus_from_paths(team, "Sample", [SAMPLE_CORPUS])


@pytest.fixture
def pending(team):
    return services.create_corpus_upload(team, "Pending", [upload("a.jsonl", jsonl(3))])


def test_the_index_lists_the_corpora_of_my_teams_only(member_client, sample, other_team):
    Corpus.objects.create(team=other_team, name="Secret")

    page = member_client.get("/corpora/").content.decode()

    assert "Sample" in page and "Secret" not in page
    assert "Upload a corpus" in page and "Evaluation sets" in page


def test_the_detail_page_shows_stats_charts_and_sets(member_client, sample):
    response = member_client.get(f"/corpora/{sample.pk}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "38</strong> documents" in page
    assert "plotly/plotly.min.js" in page and "studio/corpora.js" in page
    histogram = json.loads(page.split('id="length-histogram-data" type="application/json">')[1].split("</script>")[0])
    assert sum(histogram["data"][0]["y"]) == 38
    chart = json.loads(page.split('id="cluster-chart-data" type="application/json">')[1].split("</script>")[0])
    assert sorted(chart["data"][0]["x"]) == ["corvane", "harrowmere", "osmir", "tessellate"]
    assert 'id="ingest-progress"' not in page  # finished: no progress bar


def test_a_pending_corpus_shows_a_progress_bar_that_polls_the_status(member_client, pending):
    page = member_client.get(f"/corpora/{pending.pk}/").content.decode()

    assert 'id="ingest-progress"' in page
    assert f'data-status-url="/corpora/{pending.pk}/status.json"' in page


def test_the_status_endpoint_reports_progress(member_client, pending):
    Corpus.objects.filter(pk=pending.pk).update(status="ingesting", progress_stage="dedup", progress_done=5, progress_total=10)

    body = member_client.get(f"/corpora/{pending.pk}/status.json").json()

    assert body["status"] == "ingesting" and body["stage"] == "dedup"
    assert (body["done"], body["total"], body["finished"]) == (5, 10, False)
    assert 0 < body["overall"] < 1


def test_the_status_endpoint_says_405_to_post(member_client, pending):
    assert member_client.post(f"/corpora/{pending.pk}/status.json").status_code == 405


def test_the_cluster_browser_lists_the_documents_of_a_set(member_client, sample):
    corvane = sample.clusters.get(key="corvane")

    response = member_client.get(f"/corpora/{sample.pk}/sets/{corvane.pk}/")

    assert response.status_code == 200
    assert len(response.context["page"]) == 10
    doc = corvane.documents.first()
    assert member_client.get(f"/corpora/{sample.pk}/documents/{doc.pk}/").status_code == 200


def test_a_set_of_another_corpus_is_a_404(member_client, sample, team):
    other = services.create_corpus_from_paths(team, "Other", [SAMPLE_CORPUS / "sample.jsonl"])
    cluster = other.clusters.first()

    assert member_client.get(f"/corpora/{sample.pk}/sets/{cluster.pk}/").status_code == 404


@pytest.mark.parametrize("path", ["/corpora/{pk}/", "/corpora/{pk}/status.json", "/corpora/{pk}/delete/"])
def test_other_teams_get_404(client, outsider, annotator, sample, path):
    for user in (outsider, annotator):
        client.force_login(user)
        assert client.get(path.format(pk=sample.pk)).status_code == 404


def test_anonymous_users_are_sent_to_login(client, sample):
    response = client.get(f"/corpora/{sample.pk}/status.json")

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_failed_corpus_shows_its_error_and_file_messages(member_client, team):
    corpus = services.create_corpus_upload(team, "Bad", [upload("x.txt", b"\x00" * 40)])
    services.run_ingest(corpus, tokenizer_loader=lambda: (None, "none"))

    page = member_client.get(f"/corpora/{corpus.pk}/").content.decode()

    assert "No document could be read" in page
    assert "x.txt" in page and "not_text" in page
