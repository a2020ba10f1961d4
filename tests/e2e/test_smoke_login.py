"""The harness itself: a person logs in through the real login form on a live Daphne server."""

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e


def test_it_logs_in_and_sees_the_home_page(live_stack, page, screenshots):
    server, _worker = live_stack
    get_user_model().objects.create_user("maria", password="a-long-pass-phrase")

    log_in(page, server.url, "maria", "a-long-pass-phrase")

    assert page.locator("header .who").inner_text() == "maria"
    page.screenshot(path=str(screenshots / "home.png"), full_page=True)


def test_it_refuses_a_wrong_password(live_stack, page):
    server, _worker = live_stack
    get_user_model().objects.create_user("maria", password="a-long-pass-phrase")

    page.goto(server.url + "/login/")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")

    assert "correct username and password" in page.locator(".error").inner_text()
    assert "/login/" in page.url
