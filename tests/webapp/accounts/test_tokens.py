"""API tokens: the management page and Bearer authentication (api_or_session_auth)."""

import json
import re

import pytest
from django.http import JsonResponse
from django.test import RequestFactory

from webapp.accounts.access import api_or_session_auth
from webapp.accounts.models import ApiToken


@api_or_session_auth
def whoami(request):
    return JsonResponse({"user": request.user.username})


def test_it_creates_a_token_shown_once_and_stores_only_a_hash(client, people):
    client.force_login(people.owner)

    response = client.post("/accounts/tokens/", {"name": "export script"})

    raw = re.search(r'id="new-token">([^<]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(user=people.owner)
    assert response.status_code == 200
    assert raw.startswith("spell_")
    assert raw not in token.key_hash
    assert ApiToken.find(raw) == token
    assert raw not in client.get("/accounts/tokens/").content.decode()


def test_it_asks_for_a_name(client, people):
    client.force_login(people.owner)

    response = client.post("/accounts/tokens/", {"name": "  "})

    assert response.status_code == 400
    assert b"This field is required" in response.content
    assert not ApiToken.objects.exists()


def test_it_revokes_only_own_tokens(client, people):
    token, _ = ApiToken.issue(people.owner, "x")
    client.force_login(people.outsider)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    client.force_login(people.owner)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    assert not ApiToken.objects.exists()


def test_bearer_token_acts_as_its_user(people):
    _, raw = ApiToken.issue(people.owner, "x")
    request = RequestFactory().post("/x", HTTP_AUTHORIZATION=f"Bearer {raw}")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()

    response = whoami(request)

    assert response.status_code == 200
    assert b"owner" in response.content
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer ", "Basic abc"])
def test_a_bad_token_is_401(people, header):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/x", HTTP_AUTHORIZATION=header)
    request.user = AnonymousUser()

    response = whoami(request)

    assert response.status_code == 401
    assert "error" in json.loads(response.content)


def test_a_token_of_an_inactive_user_is_refused(people):
    _, raw = ApiToken.issue(people.owner, "x")
    people.owner.is_active = False
    people.owner.save()

    assert ApiToken.find(raw) is None


def test_admin_json_takes_an_admin_token_and_refuses_a_member_token(client, people):
    _, admin_raw = ApiToken.issue(people.admin, "a")
    _, member_raw = ApiToken.issue(people.owner, "m")

    assert client.get("/fleet/workers.json", HTTP_AUTHORIZATION=f"Bearer {admin_raw}").status_code == 200
    assert client.get("/fleet/workers.json", HTTP_AUTHORIZATION=f"Bearer {member_raw}").status_code == 403
    assert client.get("/fleet/workers.json").status_code == 401


def test_session_posts_still_need_csrf(people):
    request = RequestFactory().post("/x")  # a session user, no CSRF token
    request.user = people.owner

    response = whoami(request)

    assert response.status_code == 403
    assert "CSRF" in json.loads(response.content)["error"]
