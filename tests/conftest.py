"""Shared fixtures: the backing services the tests talk to, for real.

With DATABASE_URL / REDIS_URL set (CI) the tests use PostgreSQL and that Redis; unset, SQLite and
the embedded Redis. Worker tests start real Celery worker processes on the test database.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support import WorkerProcess

# Hypothesis draws the same examples on every run unless asked otherwise (HYPOTHESIS_PROFILE=explore):
# a fuzz test must not turn CI or a newcomer's `make test` red at random. `explore` keeps the
# random search (and its example database) for a developer hunting new failures.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_collection_modifyitems(config, items):
    """Browser tests last: they are the slowest, and what they drive is tested piecewise before."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """The embedded Redis when REDIS_URL is unset (started once per test session)."""
    from django.conf import settings

    server = None
    if settings.EMBEDDED_REDIS:
        from webapp.embedded_redis import ensure_running

        server = ensure_running(settings.REDIS_URL)
    yield settings.REDIS_URL
    if server is not None:
        server.stop()


@pytest.fixture(autouse=True)
def _flush_redis_between_tests(redis_server):
    """Each test starts with an empty broker and channel layer (stale tasks would run in the next)."""
    yield
    import redis

    try:
        redis.Redis.from_url(redis_server, socket_timeout=2).flushdb()
    except redis.RedisError:
        pass


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real worker process for one test (the test's data must be committed: transactional_db)."""
    worker = WorkerProcess().start()
    yield worker
    worker.stop()
