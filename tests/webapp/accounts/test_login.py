"""The rate-limited login (accounts:login): 10 failures per username + address in 5 minutes."""

import pytest

from tests.webapp.accounts.roles import PASSWORD
from webapp.accounts.models import LoginFailure


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 300


def login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_it_logs_in(client, people):
    response = login(client, "owner", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(people.owner.pk)


def test_it_refuses_after_too_many_failures_even_with_the_right_password(client, people):
    for _ in range(3):
        assert login(client, "owner", "wrong").status_code == 200

    response = login(client, "owner", PASSWORD)

    assert response.status_code == 200
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_counts_per_username(client, people):
    for _ in range(3):
        login(client, "owner", "wrong")

    assert login(client, "teammate", PASSWORD).status_code == 302


def test_a_success_clears_the_count(client, people):
    login(client, "owner", "wrong")
    login(client, "owner", PASSWORD)

    assert LoginFailure.objects.filter(username="owner").count() == 0


def test_it_says_so_for_an_empty_form(client, db):
    response = client.post("/accounts/login/", {})

    assert response.status_code == 200
    assert b"This field is required" in response.content
