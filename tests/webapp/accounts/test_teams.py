"""Admin team and user management, and invitations by e-mail with a one-time link."""

import re

from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from webapp.accounts.models import Invitation, Membership, Team


def test_admin_creates_a_team(admin_client):
    response = admin_client.post("/accounts/teams/", {"name": "Vision Lab", "quota": 3})

    team = Team.objects.get(name="Vision Lab")
    assert response.status_code == 302
    assert team.slug == "vision-lab"
    assert team.concurrent_run_quota == 3


def test_a_duplicate_team_is_a_clear_error(admin_client):
    response = admin_client.post("/accounts/teams/", {"name": "team a"})

    assert response.status_code == 400
    assert b"exists already" in response.content


def test_members_cannot_manage_teams(client, people):
    client.force_login(people.owner)

    assert client.get("/accounts/teams/").status_code == 403
    assert client.post("/accounts/teams/", {"name": "X"}).status_code == 403


def test_invitation_link_creates_the_account_once(admin_client, people):
    client = Client()
    admin_client.post(f"/accounts/teams/{people.team.pk}/invite/", {"email": "new@example.com", "role": "annotator"})
    link = re.search(r"http://testserver(/accounts/invitations/[^/\s]+/)", mail.outbox[0].body).group(1)

    page = client.get(link)
    created = client.post(link, {"username": "newbie", "new_password1": "a-long-pass-phrase-9",
                                 "new_password2": "a-long-pass-phrase-9"})

    user = get_user_model().objects.get(username="newbie")
    assert page.status_code == 200
    assert created.status_code == 302
    assert user.email == "new@example.com"
    assert Membership.objects.get(user=user).role == "annotator"
    assert Invitation.objects.get().accepted_by == user
    client.logout()
    assert client.get(link).status_code == 404  # used


def test_invitation_form_errors_are_shown(admin_client, people):
    client = Client()
    admin_client.post(f"/accounts/teams/{people.team.pk}/invite/", {"email": "new@example.com", "role": "member"})
    link = re.search(r"http://testserver(/accounts/invitations/[^/\s]+/)", mail.outbox[0].body).group(1)

    response = client.post(link, {"username": "owner", "new_password1": "x", "new_password2": "y"})

    assert response.status_code == 400
    assert b"That username is taken" in response.content


def test_a_bad_invitation_email_is_a_message_not_a_500(admin_client, people):
    response = admin_client.post(f"/accounts/teams/{people.team.pk}/invite/", {"email": "nope", "role": "member"},
                                 follow=True)

    assert response.status_code == 200
    assert b"valid email" in response.content
    assert not Invitation.objects.exists()


def test_admin_sets_a_role(admin_client, people):
    membership = people.teammate.memberships.get(team=people.team)

    admin_client.post(f"/accounts/memberships/{membership.pk}/role/", {"role": "annotator"})

    membership.refresh_from_db()
    assert membership.role == "annotator"


def test_a_bad_quota_is_a_message(admin_client, people):
    response = admin_client.post(f"/accounts/teams/{people.team.pk}/quota/", {"quota": "many"}, follow=True)

    assert b"whole number" in response.content


def test_admin_cannot_drop_own_admin_rights(admin_client, people):
    response = admin_client.post(f"/accounts/users/{people.admin.pk}/admin/", {"admin": "0"}, follow=True)

    people.admin.refresh_from_db()
    assert people.admin.is_staff
    assert b"cannot take away your own" in response.content


def test_admin_makes_an_admin(admin_client, people):
    admin_client.post(f"/accounts/users/{people.owner.pk}/admin/", {"admin": "1"})

    people.owner.refresh_from_db()
    assert people.owner.is_staff and people.owner.is_superuser
