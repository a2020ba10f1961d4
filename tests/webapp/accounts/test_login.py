"""The login rate limiter on every login path (our page and /admin/login/): 10 failures per username +
address in 5 minutes, the address believed from X-Forwarded-For only behind TRUSTED_PROXIES; and the
password-reset mail throttle."""

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


# --- one limiter for every login path ---------------------------------------------------------------


def admin_login(client, username, password, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, **extra)


def test_the_admin_login_is_limited_too_and_says_so(client, people):
    for _ in range(3):
        assert admin_login(client, "admin", "wrong").status_code == 200

    response = admin_login(client, "admin", PASSWORD)

    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "Too many failed logins" in response.content.decode()
    assert LoginFailure.objects.filter(username="admin").count() == 3  # not counted while limited


def test_failures_on_either_login_page_count_against_the_same_limit(client, people):
    login(client, "admin", "wrong")
    admin_login(client, "admin", "wrong")
    login(client, "admin", "wrong")

    assert admin_login(client, "admin", PASSWORD).status_code == 200
    assert "Too many failed logins" in login(client, "admin", PASSWORD).content.decode()


def test_behind_an_untrusted_address_a_forwarded_header_is_ignored(client, people):
    for n in range(3):  # an attacker naming a new address each time is still one address
        client.post("/accounts/login/", {"username": "owner", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")

    assert "Too many failed logins" in login(client, "owner", PASSWORD).content.decode()


def test_behind_a_trusted_proxy_one_client_cannot_lock_the_user_out_for_another(client, people, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's REMOTE_ADDR: the proxy
    attacker, user = {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}, {"HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    for _ in range(3):
        client.post("/accounts/login/", {"username": "owner", "password": "wrong"}, **attacker)

    limited = client.post("/accounts/login/", {"username": "owner", "password": PASSWORD}, **attacker)
    assert "Too many failed logins" in limited.content.decode()
    assert client.post("/accounts/login/", {"username": "owner", "password": PASSWORD}, **user).status_code == 302
    assert set(LoginFailure.objects.values_list("ip", flat=True)) == {"203.0.113.9"}


def test_the_client_address_is_the_last_hop_before_the_trusted_proxies(rf, settings):
    from webapp.accounts.ratelimit import client_ip

    settings.TRUSTED_PROXIES = ["10.0.0.2", "10.0.0.3"]

    def ip(remote, xff=None):
        extra = {"HTTP_X_FORWARDED_FOR": xff} if xff is not None else {}
        return client_ip(rf.get("/", REMOTE_ADDR=remote, **extra))

    assert ip("10.0.0.3", "1.2.3.4, 203.0.113.5, 10.0.0.2") == "203.0.113.5"  # a spoofed first entry is not believed
    assert ip("10.0.0.3") == "10.0.0.3"
    assert ip("10.0.0.3", "not-an-address") == "10.0.0.3"
    assert ip("192.0.2.1", "203.0.113.5") == "192.0.2.1"  # not a trusted proxy: its header is ignored


# --- password-reset mails ------------------------------------------------------------------------------


def reset(client, email, **extra):
    return client.post("/accounts/password-reset/", {"email": email}, **extra)


def test_reset_mails_are_throttled_per_account_and_per_address(client, people, settings, mailoutbox):
    settings.PASSWORD_RESET_LIMIT = 2
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    for n in range(3):  # one account from three addresses
        assert reset(client, "owner@example.com", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 302
    assert len(mailoutbox) == 2

    for address in ("teammate@example.com", "annotator@example.com", "admin@example.com"):  # one address, three accounts
        assert reset(client, address, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 302
    assert [m.to for m in mailoutbox[2:]] == [["teammate@example.com"], ["annotator@example.com"]]
