import pytest

from tests.webapp.accounts.roles import make_people


@pytest.fixture
def people(db):
    return make_people()


@pytest.fixture
def admin_client(client, people):
    client.force_login(people.admin)
    return client
