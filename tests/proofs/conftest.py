"""Fault proofs: real runs of `python -m spell train` on the tiny random model, supervised by real
Celery worker processes on the test database, with one fault injected per test. Each proof ends
with the same "nothing lost" checks:

    the run's event seqs in the database are 0..n-1 (contiguous, no duplicates),
    every well-formed line of OUT/events.jsonl is stored exactly once, in file order,
    the checkpoint `latest` names is complete and loads (state.json and the model weights).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support import REPO, WorkerProcess, child_env

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs its own loop

from spell.events import EVENT_TYPES, TRANSIENT_TYPES  # noqa: E402

# The smallest real self-play step the tiny model can do (a few seconds on a CPU).
TINY_OVERRIDES = {
    "tasks.docs_per_question": 2, "selfplay.questions_per_task": 1, "selfplay.group_size": 2,
    "selfplay.verifier_samples": 2, "selfplay.batch_groups": 2, "selfplay.max_generation_batches": 1,
    "sampling.max_response_tokens": 4, "memory.new_docs_per_round": 1, "eval.at_start": False,
    "eval.every_steps": 0, "checkpoint.every_steps": 1,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    from spell.models import prepare_model

    return prepare_model("tiny-random")


@pytest.fixture
def runs_root(settings, tmp_path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    settings.RUNS_ROOT = root
    return root


@pytest.fixture
def world(transactional_db, runs_root, tiny_model_path, django_user_model):
    """A team with an owner, the bundled sample corpus ingested, the tiny model registered."""
    from webapp.accounts.models import Membership, Team
    from webapp.corpora.services import create_corpus_from_paths
    from webapp.runs.models import ModelEntry

    team = Team.objects.create(name="Proofs", slug="proofs")
    owner = django_user_model.objects.create_user("owner", password="pw-for-proofs-1")
    Membership.objects.create(user=owner, team=team, role=Membership.Role.MEMBER)
    corpus = create_corpus_from_paths(team, "Sample", [REPO / "samples" / "corpus"], user=owner)
    assert corpus.status == "ready", corpus.error
    entry = ModelEntry.objects.create(name="tiny-random", path=str(tiny_model_path), max_positions=8192)
    return {"team": team, "owner": owner, "corpus": corpus, "model": entry, "runs_root": runs_root}


def launch_tiny(world, steps: int, name: str = "proof", **overrides):
    """A run of the tiny model through the same services the run form uses (queued on `cpu`)."""
    from webapp.runs import services

    values = {**TINY_OVERRIDES, "run.steps": steps, **overrides}
    cfg = services.build_config("cpu-demo", values, world["model"])
    return services.launch(team=world["team"], name=name, corpus=world["corpus"], model_entry=world["model"],
                           config=cfg, preset="cpu-demo", queue="cpu", user=world["owner"])


def start_worker(world, name: str, queues: str = "cpu", **env) -> WorkerProcess:
    base = {"RUNS_ROOT": world["runs_root"], "WORKER_HEARTBEAT_SECONDS": 1, "RUN_CANCEL_GRACE_SECONDS": 5}
    return WorkerProcess(queues=queues, name=name, env=child_env(**{**base, **env})).start(timeout=120)


def kill_group(worker: WorkerProcess, sig=signal.SIGKILL) -> None:
    """Signal the worker's whole process group: the main process and its pool children."""
    try:
        os.killpg(worker.process.pid, sig)
    except ProcessLookupError:
        pass
    worker.process.wait(timeout=30)


def wait_for(predicate, what: str, timeout: float = 300, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {getattr(w, 'log_path', w)}:\n{w.log()[-3000:]}" for w in logs)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f}s\n{tails}")


def run_row(run):
    from webapp.runs.models import Run

    return Run.objects.get(pk=run.pk)


def state_of(run) -> str:
    from webapp.runs.models import Run

    return Run.objects.values_list("state", flat=True).get(pk=run.pk)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def file_events(run_dir: Path) -> tuple[list[dict], list[bytes]]:
    """(well-formed events the relay stores a row for, other lines) of OUT/events.jsonl, by the
    relay's rule. `progress` events are well formed but kept as the latest per phase, not as rows."""
    good, bad = [], []
    for line in (run_dir / "events.jsonl").read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("type") in EVENT_TYPES and isinstance(obj.get("payload", {}), dict):
            if obj["type"] not in TRANSIENT_TYPES:
                good.append(obj)
        else:
            bad.append(line)
    return good, bad


def assert_nothing_lost(run) -> list:
    """Contiguous run-wide seqs, no duplicates, every event of the file stored once in order."""
    from webapp.runs.models import RunEvent

    rows = list(RunEvent.objects.filter(run_id=run.pk).order_by("seq").values_list("seq", "attempt", "src_seq", "type"))
    seqs = [r[0] for r in rows]
    assert seqs == list(range(len(seqs))), f"seqs are not 0..n-1: {seqs}"
    keys = [(r[1], r[2]) for r in rows]
    assert len(set(keys)) == len(keys), "an event of the file was stored twice"
    good, _ = file_events(Path(run_row(run).run_dir))
    assert [(e.get("attempt"), e.get("seq"), e["type"]) for e in good] == [(a, s, t) for _, a, s, t in rows]
    return rows


def assert_checkpoint_loads(run_dir: Path, step: int | None = None) -> Path:
    """`latest` names a complete checkpoint whose state and weights load; returns its folder."""
    from transformers import AutoModelForCausalLM

    from spell import checkpoint as ckpt

    root = Path(run_dir) / "checkpoints"
    name = (root / ckpt.LATEST).read_text().strip()
    if step is not None:
        assert name == ckpt.checkpoint_name(step), f"latest is {name}, expected step {step}"
    loaded = ckpt.load_checkpoint(root / name)
    assert loaded.state.step == int(name.split("-")[1])
    assert (loaded.path / "optimizer.pt").is_file() or (loaded.path / "deepspeed").is_dir()
    model = AutoModelForCausalLM.from_pretrained(str(loaded.model_dir), local_files_only=True)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert not list(root.glob(".incomplete-*")), "a scratch folder was left behind"
    return loaded.path


def assert_page_has_every_event(run, seen: list[int], start: int, last: int) -> None:
    """The seqs a run page applied after `start`: strictly increasing, and every event stored in
    (start, last] among them except heartbeats (stored, never sent live; a backfill includes them)."""
    from webapp.runs.models import RunEvent

    assert seen == sorted(set(seen)), f"repeats or disorder on the page: {seen}"
    rows = RunEvent.objects.filter(run_id=run.pk, seq__gt=start, seq__lte=last).order_by("seq")
    beats = set(rows.filter(type="heartbeat").values_list("seq", flat=True))
    expected = [s for s in rows.values_list("seq", flat=True) if s not in beats]
    assert [s for s in seen if s not in beats] == expected, f"the page missed events: {sorted(set(expected) - set(seen))}"


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own (tests/proofs/private_redis.py), stopped at the end."""
    from tests.proofs.private_redis import PrivateRedis

    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()
