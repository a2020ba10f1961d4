import pytest


@pytest.fixture
def client(client, django_user_model):
    """An admin's client: the details below are for admins (anyone else gets the status alone)."""
    client.force_login(django_user_model.objects.create_user("ops", password="pw-for-health-1", is_staff=True))
    return client


@pytest.mark.django_db
def test_anyone_else_gets_the_status_alone(django_user_model):
    from django.test import Client

    anonymous, member = Client(), Client()
    member.force_login(django_user_model.objects.create_user("member", password="pw-for-health-1"))
    for caller in (anonymous, member):
        response = caller.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "degraded"}


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
    from django.test import Client

    assert Client().get("/healthz").json() == {"status": "down"}
