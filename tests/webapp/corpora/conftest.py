"""Corpora test fixtures: a team with a member, an annotator and an outsider; uploads go to a
temporary MEDIA_ROOT."""

from __future__ import annotations

import pytest

from webapp.accounts.models import Membership, Team


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def team(db):
    return Team.objects.create(name="Lab", slug="lab")


@pytest.fixture
def other_team(db):
    return Team.objects.create(name="Other", slug="other")


def _user(django_user_model, name, team=None, role=Membership.Role.MEMBER):
    user = django_user_model.objects.create_user(name, password="pw-for-tests-1")
    if team is not None:
        Membership.objects.create(user=user, team=team, role=role)
    return user


@pytest.fixture
def member(django_user_model, team):
    return _user(django_user_model, "member", team)


@pytest.fixture
def annotator(django_user_model, team):
    return _user(django_user_model, "annotator", team, Membership.Role.ANNOTATOR)


@pytest.fixture
def outsider(django_user_model, other_team):
    return _user(django_user_model, "outsider", other_team)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client
