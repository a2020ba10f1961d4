"""Helpers the tests share: environments for child processes and a real Celery worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def database_url_for_children() -> str:
    """A DATABASE_URL naming the test database, for child processes (workers, the CLI, Daphne)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"


def child_env(**extra) -> dict:
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_children(),
        REDIS_URL=settings.REDIS_URL,
        SPELL_VAR_DIR=str(settings.VAR_DIR),
        RUNS_ROOT=str(settings.RUNS_ROOT),
        MODEL_ROOT=str(settings.MODEL_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    """A real `celery worker` child process on the test database and broker."""

    def __init__(self, queues: str = "default,cpu", name: str = "test", concurrency: int = 1, env: dict | None = None):
        self.queues, self.name, self.concurrency = queues, name, concurrency
        self.env = env or child_env()
        self.process: subprocess.Popen | None = None
        self.log_path = Path(self.env["SPELL_VAR_DIR"]) / f"worker-{name}-{os.getpid()}.log"

    @property
    def hostname(self) -> str:
        return f"{self.name}@pytest"

    def start(self, timeout: float = 60) -> "WorkerProcess":
        from workers.celery import app

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", self.queues, "-n", self.hostname,
             "--concurrency", str(self.concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log_path.read_text()[-3000:]}")
            replies = app.control.ping(destination=[self.hostname], timeout=0.5) or []
            if replies:
                return self
        self.stop()
        raise RuntimeError(f"celery worker did not answer within {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig=None) -> None:
        import signal

        if self.process and self.process.poll() is None:
            self.process.send_signal(sig or signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def fake_checkpoint(run_dir, step: int, *, weights: bytes = b"\0" * 1024, latest: bool = True):
    """A checkpoint folder complete by spell/rundir.py's rule (model/config.json and state.json),
    without training anything; `latest` points at it. Returns its model/ folder."""
    import json as _json

    from spell import rundir

    folder = Path(run_dir) / rundir.CHECKPOINTS / rundir.checkpoint_name(step)
    (folder / rundir.MODEL_DIR).mkdir(parents=True, exist_ok=True)
    (folder / rundir.MODEL_DIR / "config.json").write_text(_json.dumps({"model_type": "qwen2", "step": step}))
    (folder / rundir.MODEL_DIR / "model.safetensors").write_bytes(weights)
    (folder / rundir.STATE_FILE).write_text(_json.dumps({"version": 1, "step": step}))
    if latest:
        (folder.parent / rundir.LATEST).write_text(folder.name + "\n")
    return folder / rundir.MODEL_DIR


def accepts(compiler, grammar: str, text: str) -> bool:
    """The grammar takes all of `text` and may end right after it (`compiler`: the spell tests' fixture)."""
    import xgrammar

    compiled, eos = compiler
    matcher = xgrammar.GrammarMatcher(compiled.compile_grammar(grammar))
    return matcher.accept_string(text) and matcher.accept_token(eos) and matcher.is_terminated()
