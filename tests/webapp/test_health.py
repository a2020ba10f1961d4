import pytest


@pytest.mark.django_db
def test_it_reports_database_and_redis(client):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert body["workers"]["ok"] is False  # no worker runs in this test
    assert body["status"] == "degraded"


def test_it_counts_a_live_worker(client, celery_worker_process):
    body = client.get("/healthz").json()

    assert body["workers"]["ok"] is True
    assert celery_worker_process.hostname in body["workers"]["names"]
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_it_says_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["redis"]["ok"] is False
    assert response.json()["status"] == "down"
