import pytest

from tests.webapp.accounts.roles import make_people


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db):
    return make_people()


@pytest.fixture
def admin_client(client, people):
    client.force_login(people.admin)
    return client
