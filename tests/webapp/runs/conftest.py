"""Runs test fixtures: a team with an owner, a teammate and an annotator, an outsider in another
team, an admin; a registered model, a ready corpus; runs made through services.launch."""

from __future__ import annotations

import pytest

from spell.config import preset
from webapp.accounts.models import Membership, Team
from webapp.runs.models import ModelEntry

from tests.webapp.runs.factories import make_corpus, make_run  # noqa: F401 - helpers the tests import too


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def runs_root(settings, tmp_path):
    settings.RUNS_ROOT = tmp_path / "runs"
    settings.RUNS_ROOT.mkdir()
    return settings.RUNS_ROOT


@pytest.fixture
def team(db):
    return Team.objects.create(name="Lab", slug="lab")


@pytest.fixture
def other_team(db):
    return Team.objects.create(name="Other", slug="other")


def _user(django_user_model, name, team=None, role=Membership.Role.MEMBER, **extra):
    user = django_user_model.objects.create_user(name, password="pw-for-tests-1", **extra)
    if team is not None:
        Membership.objects.create(user=user, team=team, role=role)
    return user


@pytest.fixture
def owner(django_user_model, team):
    return _user(django_user_model, "owner", team)


@pytest.fixture
def teammate(django_user_model, team):
    return _user(django_user_model, "teammate", team)


@pytest.fixture
def annotator(django_user_model, team):
    return _user(django_user_model, "annotator", team, Membership.Role.ANNOTATOR)


@pytest.fixture
def outsider(django_user_model, other_team):
    return _user(django_user_model, "outsider", other_team)


@pytest.fixture
def admin(django_user_model):
    return _user(django_user_model, "admin", is_staff=True)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def model_entry(db):
    return ModelEntry.objects.create(name="tiny", path="var/models/tiny", max_positions=8192)


@pytest.fixture
def corpus(team):
    return make_corpus(team)


@pytest.fixture
def run(team, corpus, model_entry, owner):
    return make_run(team, corpus, model_entry, user=owner)


@pytest.fixture
def cpu_demo():
    return preset("cpu-demo")
