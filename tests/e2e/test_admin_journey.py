"""An admin's journey in a real browser: the fleet page shows the live worker, drain and enable it,
create a team and invite a member, see the users, and register a model in the admin site."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in
from webapp.accounts.models import Invitation, Team
from webapp.fleet.models import Worker
from webapp.runs.models import ModelEntry

pytestmark = pytest.mark.e2e


@pytest.fixture
def admin_user(transactional_db):
    return get_user_model().objects.create_superuser("ada", "ada@example.org", "a-long-pass-phrase")


def test_an_admin_manages_the_fleet_teams_users_and_models(live_stack, admin_user, page, screenshots, tmp_path):
    server, worker = live_stack
    page.on("dialog", lambda dialog: dialog.accept())  # Drain asks first
    log_in(page, server.url, "ada", "a-long-pass-phrase")

    # The fleet page shows the worker this test started, online, with its queues.
    page.goto(server.url + "/fleet/")
    card = page.locator(f"section.worker[data-hostname='{worker.hostname}']")
    card.wait_for(timeout=30_000)
    assert "online" in card.locator("[data-field=state]").inner_text().lower()
    assert "cpu" in card.locator(".queues").inner_text()
    page.screenshot(path=str(screenshots / "admin-fleet.png"), full_page=True)

    # Drain it (no new runs), then enable it again.
    card.locator("button:has-text('Drain')").click()
    page.wait_for_load_state()
    state = Worker.objects.get(hostname=worker.hostname).state
    assert state in ("draining", "disabled")
    page.locator(f"section.worker[data-hostname='{worker.hostname}'] button:has-text('Enable')").click()
    page.wait_for_load_state()
    assert Worker.objects.get(hostname=worker.hostname).state == "online"

    # A team, and an invitation for a member.
    page.goto(server.url + "/accounts/teams/")
    page.fill("input[name=name]", "Vision")
    page.click("button:has-text('Create')")
    page.wait_for_url(re.compile(r"/accounts/teams/\d+/"))
    team = Team.objects.get(name="Vision")
    page.fill("input[name=email]", "newcomer@example.org")
    page.click("button:has-text('Send the invitation')")
    page.wait_for_load_state()
    assert Invitation.objects.filter(team=team, email="newcomer@example.org").exists()
    page.screenshot(path=str(screenshots / "admin-team.png"), full_page=True)

    page.goto(server.url + "/accounts/users/")
    assert page.locator("text=ada").count() >= 1

    # Register a model through the admin site.
    folder = tmp_path / "my-model"
    folder.mkdir()
    page.goto(server.url + "/admin/runs/modelentry/add/")
    page.fill("input[name=name]", "my-model")
    page.fill("input[name=path]", str(folder))
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/admin/runs/modelentry/$"))
    entry = ModelEntry.objects.get(name="my-model")
    assert entry.trust_remote_code is False and entry.created_by == admin_user
    page.screenshot(path=str(screenshots / "admin-models.png"), full_page=True)
