"""Supervise one attempt of a run: claim, prepare the run directory, launch the training process,
relay its events, heartbeat, apply cancel / pause, and record how it ended.

    supervise(run_id, hostname)   # called by the Celery task workers.runs.supervise (workers/run_tasks.py)

The contract with the process is docs/architecture.md "Process control": SIGTERM = cancel (SIGKILL
after RUN_CANCEL_GRACE_SECONDS), SIGUSR1 = checkpoint and exit 0 (pause), `--resume` continues from
OUT/checkpoints/latest, `--attempt N` goes into every event; exit 0 finished or paused, 2 bad input
(one line on stderr), anything else a crash.

No wedged run: once a run is claimed, every way out of `supervise` ends the attempt. The training
process is stopped (SIGTERM, SIGKILL after the grace period) whenever the supervisor itself fails,
and the run is recorded FAILED with the error on its page, or LOST (requeued by the sweeper's usual
rule) when the cause is the infrastructure: the database or the broker unreachable, or the worker
shutting down. If even that cannot be written (the database stays down), the worker's heartbeat
reports the runs it still supervises and the fleet marks the others LOST (webapp/fleet/services.py).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from spell import rundir
from spell.train import EXIT_STARVED, EXIT_SUPERSEDED
from webapp.runs import lifecycle
from webapp.runs.models import Run
from workers.relay import EventRelay

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
# The run folder's names (spell/rundir.py is the one contract for the three layers).
CONFIG_NAME = rundir.STUDIO_CONFIG
CORPUS_NAME = rundir.CORPUS
EVAL_DIR = rundir.EVAL_DIR
DECONTAMINATION_NAME = rundir.DECONTAMINATION
LOG_TAIL_LINES = 30
DB_ERRORS = (OperationalError, InterfaceError)
DB_RETRY_SECONDS = 600  # how long a database outage is ridden out before the task gives up
DB_RETRY_PAUSE = 1.0
OUTCOME_RETRY_SECONDS = 600  # how long the outcome of an abandoned attempt is retried through an outage


def infrastructure_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the database or the broker is unreachable (not a fault of the run)."""
    errors: list[type[BaseException]] = [*DB_ERRORS, ConnectionError, TimeoutError]
    try:
        from kombu.exceptions import OperationalError as BrokerError

        errors.append(BrokerError)
    except ImportError:  # pragma: no cover - kombu comes with celery
        pass
    try:
        import redis

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def is_infrastructure(exc: BaseException) -> bool:
    """True for the database / broker unreachable, also when wrapped (raise ... from exc)."""
    seen = set()
    errors = infrastructure_errors()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, errors):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def describe_failure(exc: BaseException) -> str:
    """`Type: message (file:line in function)`, the innermost frame: what the run page shows."""
    text = " ".join(traceback.format_exception_only(type(exc), exc)).strip()
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if frames:
        last = frames[-1]
        where = Path(last.filename)
        try:
            where = where.relative_to(settings.BASE_DIR)
        except ValueError:
            where = Path(where.name)
        text += f" ({where}:{last.lineno} in {last.name})"
    return text[:2000]


# What the training process inherits from the worker's environment: the system basics, the launcher's
# distributed settings and the library caches. Never the web app's secrets (SECRET_KEY, the
# database and broker URLs with their passwords): the process runs a team's config and model code.
TRAINING_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
    "PYTHONPATH", "PYTHONHASHSEED", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "XDG_CACHE_HOME",
    "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "TORCH_EXTENSIONS_DIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
})
TRAINING_ENV_PREFIXES = ("LC_", "NCCL_", "SPELL_", "HF_", "TRANSFORMERS_", "VLLM_", "DS_", "TORCH_", "GLOO_")
TRAINING_ENV_DENY = frozenset({"SPELL_TRAIN_COMMAND"})  # the worker's own setting


def training_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a training process: the allow-list above, unbuffered output."""
    environ = os.environ if environ is None else environ
    kept = {k: v for k, v in environ.items()
            if (k in TRAINING_ENV_NAMES or k.startswith(TRAINING_ENV_PREFIXES)) and k not in TRAINING_ENV_DENY}
    return {**kept, "PYTHONUNBUFFERED": "1"}


def train_command(config: dict | None = None, gpus: int | None = None) -> list[str]:
    """The training process's command for a run's frozen `config`: `python -m spell train` for a
    CPU run or one GPU; torchrun (`python -m spell.torchrun`: torchrun whose agent survives the pause
    signal) `--standalone --nproc_per_node N -m spell train` when the run asks for N > 1 GPUs
    (trainer.num_gpus), one process per GPU, torchrun setting RANK / WORLD_SIZE / MASTER_ADDR for
    each (multi-node is torchrun's own rendezvous, not ours). `gpus`: what this worker
    has (its NVML inventory; None = read it). SPELL_TRAIN_COMMAND, when set, replaces the whole prefix
    (the test double of the process protocol, or a site's own launcher). NotEnoughGpus when the run
    needs more GPUs than this worker has."""
    override = os.environ.get("SPELL_TRAIN_COMMAND", "").strip()
    if override:
        return shlex.split(override)
    plain = [sys.executable, "-m", "spell", "train"]
    trainer = (config or {}).get("trainer") or {}
    if trainer.get("device") != "cuda":
        return plain
    need = max(int(trainer.get("num_gpus") or 1), 1)
    if gpus is None:
        from workers.heartbeat import read_gpus

        gpus = len(read_gpus()[0])
    if need > gpus:
        raise NotEnoughGpus(f"The run needs {need} GPU(s) (trainer.num_gpus) and this worker has {gpus}: "
                            "it cannot start here. Launch it on a queue whose workers have that many, or lower "
                            "trainer.num_gpus.")
    if need == 1:
        return plain
    return [sys.executable, "-m", "spell.torchrun", "--standalone", f"--nproc_per_node={need}", "-m", "spell", "train"]


class NotEnoughGpus(RuntimeError):
    """This worker has fewer GPUs than the run asks for: the attempt fails with this message."""


# --- prepare ----------------------------------------------------------------------------


def write_corpus(corpus, path: Path, eval_paths: list[str] = ()) -> dict | None:
    """The corpus snapshot the process reads (docs/architecture.md corpus JSONL), less the
    documents that share a 13-word run with the run's evaluation sets (spell/data/decontam.py).
    Returns the decontamination report (also written beside it) when there were sets."""
    from webapp.corpora.services import write_training_corpus

    tmp = path.with_suffix(".tmp")
    write_training_corpus(corpus, tmp)
    report = None
    if eval_paths:
        from spell.data.decontam import EvalIndex
        from spell.evaluation import read_sets

        index = EvalIndex.from_items(item for items in read_sets(eval_paths).values() for item in items)
        kept, dropped = [], []
        for line in tmp.read_text(encoding="utf-8").splitlines():
            if line.strip():
                (dropped if index.contaminated(json.loads(line)["text"]) else kept).append(line)
        if len(dropped) > len(kept):
            tmp.unlink()
            raise RuntimeError(f"{len(dropped)} of {len(kept) + len(dropped)} corpus documents copy text of the run's "
                               "evaluation sets: the corpus is mostly evaluation text. Choose other evaluation sets "
                               "or another corpus")
        tmp.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
        from spell.data.decontam import launch_report
        from spell.provenance import file_sha256

        # ids of all, titles of the first 50, and which snapshot it is about (provenance.json quotes it)
        report = launch_report([Path(p).stem for p in eval_paths], len(kept) + len(dropped),
                               [json.loads(x) for x in dropped], corpus_sha256=file_sha256(tmp))
        (path.parent / DECONTAMINATION_NAME).write_text(json.dumps(report, indent=2))
    os.replace(tmp, path)
    return report


def prepare_run_dir(run: Run) -> tuple[Path, Path]:
    """Write the evaluation sets, the corpus snapshot less what copies them (once: a resumed
    attempt trains and evaluates on the same files) and the frozen config into the run directory;
    returns (config path, corpus path)."""
    root = Path(run.run_dir)
    (root / rundir.LOGS).mkdir(parents=True, exist_ok=True)
    corpus_path = root / CORPUS_NAME
    paths = write_eval_sets(run, root / EVAL_DIR)
    if not corpus_path.exists():
        if run.corpus is None:
            raise RuntimeError("the run's corpus was deleted before the run started")
        report = write_corpus(run.corpus, corpus_path, paths)
        if report is not None:
            log.info("run %s: %d of %d documents dropped as copies of evaluation text (%s)", run.pk,
                     len(report["dropped"]), report["documents"], ", ".join(report["eval_sets"]))
    config = json.loads(json.dumps(run.config))  # a copy: the stored config stays as frozen
    if paths:
        config.setdefault("eval", {})["sets"] = paths
    config_path = root / CONFIG_NAME
    tmp = config_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, config_path)
    return config_path, corpus_path


def write_eval_sets(run: Run, folder: Path) -> list[str]:
    """The run's evaluation sets as item files named after the sets (the chart's curve names),
    written on the first attempt; a resumed attempt evaluates on the same files even if a set was
    deleted or replaced since. Returns their paths in name order."""
    from django.utils.text import slugify

    from webapp.corpora.services import write_eval_set

    folder.mkdir(parents=True, exist_ok=True)
    for eval_set in run.eval_sets.order_by("name"):
        target = folder / f"{slugify(eval_set.name) or 'set'}-{eval_set.pk}.jsonl"
        if not target.exists():
            write_eval_set(eval_set, target.with_suffix(".partial"))
            os.replace(target.with_suffix(".partial"), target)
    return sorted(str(p) for p in folder.glob("*.jsonl"))


def resume_point(run_dir: Path) -> int | None:
    """Step of the run's latest complete checkpoint, None when there is none (spell/rundir.py)."""
    return rundir.resume_step(run_dir)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The training process gets SIGTERM if the worker process that launched it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --- the supervision loop -------------------------------------------------------------------------


class Supervisor:
    def __init__(self, run: Run, *, command: list[str] | None = None, poll_seconds: float = POLL_SECONDS):
        self.run = run
        self.attempt = run.attempt
        self.root = Path(run.run_dir)
        self.command = command  # None: train_command() for the run's config, in start()
        self.poll_seconds = poll_seconds
        self.relay: EventRelay | None = None  # made by start() (it reads the run's stored offset)
        self.process: subprocess.Popen | None = None
        self.log_path = rundir.attempt_log(self.root, self.attempt)
        self.sent: dict[str, float] = {}  # signal name -> when it was sent
        self.lost_ownership = False
        self.db_down_since: float | None = None

    def argv(self, config_path: Path, corpus_path: Path, resume: bool) -> list[str]:
        args = [*self.command, "--config", str(config_path), "--corpus", str(corpus_path), "--out", str(self.root),
                "--attempt", str(self.attempt), "--no-progress"]
        return args + (["--resume"] if resume else [])

    def start(self) -> None:
        if self.command is None:  # here, not in __init__: a refusal (NotEnoughGpus) ends the attempt FAILED
            self.command = train_command(self.run.config)
        self.relay = EventRelay(self.run.pk, self.root / rundir.EVENTS, attempt=self.attempt)
        config_path, corpus_path = prepare_run_dir(self.run)
        step = resume_point(self.root)
        if self.attempt > 1:
            # The previous attempt's last lines (written after the relay that tailed it was gone)
            # are stored first, so that they are hidden with the rest of what it did after `step`.
            self.relay.poll()
            EventRelay.mark_superseded(self.run.pk, self.attempt, step if step is not None else -1)
            Run.objects.filter(pk=self.run.pk, attempt=self.attempt).update(last_step=step or 0)
        argv = self.argv(config_path, corpus_path, resume=step is not None)
        # The fence: a process of an older attempt still alive (its worker lost the database for
        # longer than the offline threshold) stops before its next write (spell/rundir.py).
        rundir.claim(self.root, self.attempt)
        with open(self.log_path, "ab") as logf:
            report = self.root / DECONTAMINATION_NAME
            if self.attempt == 1 and report.exists():
                r = json.loads(report.read_text())
                logf.write((f"decontamination: {len(r['dropped'])} of {r['documents']} corpus documents left out, as "
                            f"copies of text in {', '.join(r['eval_sets'])} ({DECONTAMINATION_NAME})\n").encode())
            logf.write(f"$ {shlex.join(argv)}\n".encode())
            logf.flush()
            self.process = subprocess.Popen(
                argv, cwd=settings.BASE_DIR, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=training_environment(), start_new_session=True, preexec_fn=_die_with_parent,
            )
        Run.objects.filter(pk=self.run.pk, attempt=self.attempt).update(pid=self.process.pid)
        log.info("run %s attempt %s: started pid %s%s", self.run.pk, self.attempt, self.process.pid,
                 f" from checkpoint step {step}" if step is not None else "")

    def _signal(self, name: str, sig: int) -> None:
        if name in self.sent or self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)  # the whole group: launchers (deepspeed) have children
        except ProcessLookupError:
            return
        self.sent[name] = time.monotonic()
        log.info("run %s: sent %s to the training process", self.run.pk, name)

    def heartbeat(self) -> str | None:
        """Touch the run row; returns the requested action, None when the run is no longer ours."""
        rows = Run.objects.filter(pk=self.run.pk, state=Run.State.RUNNING, attempt=self.attempt)
        if not rows.update(heartbeat_at=timezone.now()):
            return None
        return rows.values_list("requested_action", flat=True).first() or ""

    def loop(self) -> int:
        beat_every = max(0.5, float(settings.WORKER_HEARTBEAT_SECONDS))
        grace = float(settings.RUN_CANCEL_GRACE_SECONDS)
        last_beat = 0.0
        while True:
            rc = self.process.poll()
            try:
                self.relay.poll()
                if rc is not None:
                    return rc
                now = time.monotonic()
                # The control state is polled every turn (one indexed read); the heartbeat write every few seconds.
                if now - last_beat >= beat_every:
                    action, last_beat = self.heartbeat(), now
                else:
                    action = self._action()
            except DB_ERRORS as exc:
                # The database is restarting: the process keeps training, its events wait in
                # events.jsonl, and the next turn stores them (the relay's writes are idempotent).
                self._database_down(exc)
                continue
            self.db_down_since = None
            if action is None:
                self.lost_ownership = True
                log.warning("run %s: no longer RUNNING attempt %s here; stopping the process", self.run.pk, self.attempt)
                self._signal("SIGTERM", signal.SIGTERM)
                self._wait_or_kill(grace)
                return self.process.returncode
            if action == Run.Action.CANCEL:
                self._signal("SIGTERM", signal.SIGTERM)
                if now - self.sent.get("SIGTERM", now) >= grace:
                    self._signal("SIGKILL", signal.SIGKILL)
            elif action == Run.Action.PAUSE:
                self._signal("SIGUSR1", signal.SIGUSR1)
            time.sleep(self.poll_seconds)

    def _database_down(self, exc: Exception, give_up: bool = True) -> None:
        from django.db import connection

        if self.db_down_since is None:
            self.db_down_since = time.monotonic()
            log.warning("run %s: database unavailable (%s); retrying, the training process goes on", self.run.pk,
                        " ".join(str(exc).split())[:200])
        elif give_up and time.monotonic() - self.db_down_since > DB_RETRY_SECONDS:
            raise exc
        connection.close()  # a broken connection stays broken; the next query opens a new one
        time.sleep(DB_RETRY_PAUSE)

    def finish_retrying(self, rc: int) -> Run.State:
        """finish(), through a database outage (the run must not stay RUNNING behind a live worker)."""
        while True:
            try:
                return self.finish(rc)
            except DB_ERRORS as exc:
                self._database_down(exc)

    def _action(self) -> str | None:
        row = Run.objects.filter(pk=self.run.pk).values_list("state", "attempt", "requested_action").first()
        if row is None or row[0] != Run.State.RUNNING or row[1] != self.attempt:
            return None
        return row[2] or ""

    def _wait_or_kill(self, grace: float) -> None:
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal("SIGKILL", signal.SIGKILL)
            self.process.wait()

    def stop_process(self) -> None:
        """The supervisor is giving up on this attempt: never leave its training process running."""
        if self.process is None or self.process.poll() is not None:
            return
        self.sent.pop("SIGTERM", None)  # a SIGTERM sent for a cancel does not count: send it (again)
        self._signal("SIGTERM", signal.SIGTERM)
        self._wait_or_kill(float(settings.RUN_CANCEL_GRACE_SECONDS))

    def abandon(self, exc: BaseException) -> str:
        """End the attempt after the supervisor itself failed (the process is already stopped):
        LOST when the cause is the infrastructure (requeued by the sweeper's usual rule), FAILED
        with the error otherwise. The write is retried through a database outage for up to
        OUTCOME_RETRY_SECONDS; returns the state written, or "unrecorded" when it never could be
        (then the worker's heartbeat, which no longer lists the run, has the fleet mark it LOST)."""
        what = describe_failure(exc)
        if not isinstance(exc, Exception):
            state = Run.State.LOST
            error = f"The worker stopped while supervising this attempt ({what or type(exc).__name__})."
        elif is_infrastructure(exc):
            state = Run.State.LOST
            error = (f"The attempt was abandoned: the database or the broker was unreachable ({what}). "
                     "The training process was stopped; the run is requeued from its last checkpoint.")
        elif self.process is None:
            state, error = Run.State.FAILED, f"Could not start the training process: {exc}"
        else:
            state = Run.State.FAILED
            error = (f"The worker's supervisor failed: {what}. The training process was stopped."
                     + (f"\n\n{self.log_tail()}" if self.log_tail() else ""))
        deadline = time.monotonic() + OUTCOME_RETRY_SECONDS
        while True:
            try:
                self.end(state, error)
                return state
            except Exception as write_exc:  # noqa: BLE001 - keep trying only while the database is away
                if not is_infrastructure(write_exc) or time.monotonic() > deadline:
                    log.exception("run %s attempt %s: could not record %s", self.run.pk, self.attempt, state)
                    return "unrecorded"
                self._database_down(write_exc, give_up=False)

    def finish(self, rc: int) -> Run.State:
        """Record how the attempt ended (only if the run is still this attempt's RUNNING run)."""
        self.relay.poll()
        action = Run.objects.filter(pk=self.run.pk).values_list("requested_action", flat=True).first() or ""
        error = ""
        if action == Run.Action.CANCEL or "SIGTERM" in self.sent:
            state = Run.State.CANCELLED
        elif rc == 0:
            state = Run.State.PAUSED if action == Run.Action.PAUSE or "SIGUSR1" in self.sent else Run.State.SUCCEEDED
        elif rc in (2, EXIT_STARVED):  # bad input, or steps without questions: one clear line
            state, error = Run.State.FAILED, self.error_line()
        else:
            state = Run.State.FAILED
            how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
            reported = [e["payload"].get("message", "") for e in self.relay.seen if e["type"] == "error"]
            head = f"The training process crashed ({how})" + (f": {reported[-1]}" if reported and reported[-1] else ".")
            error = head + "\n\n" + self.log_tail()
        self.end(state, error)
        return state

    def end(self, state: str, error: str = "") -> bool:
        from webapp.runs.services import disk_usage

        Run.objects.filter(pk=self.run.pk, attempt=self.attempt).update(disk_bytes=disk_usage(self.root))
        return lifecycle.end(self.run.pk, self.attempt, state, error)

    def log_lines(self) -> list[str]:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, 2) - 64 * 1024))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()]

    def error_line(self) -> str:
        """The one clear line a bad-input (2) or starved (3) exit writes on stderr."""
        lines = self.log_lines()
        for line in reversed(lines):
            if "error:" in line:
                return line.strip()
        return lines[-1].strip() if lines else "The training process rejected its input (exit code 2)."

    def log_tail(self) -> str:
        return "\n".join(self.log_lines()[-LOG_TAIL_LINES:])


def supervise(run_id: int, hostname: str = "", *, command: list[str] | None = None,
              poll_seconds: float = POLL_SECONDS) -> dict[str, Any]:
    run = lifecycle.claim(run_id, hostname)
    if run is None:
        state = Run.objects.filter(pk=run_id).values_list("state", flat=True).first()
        if state == Run.State.QUEUED:  # not taken: the team is at its concurrent-run quota
            log.info("run %s: team at its concurrent-run quota; will retry", run_id)
            return {"run": run_id, "claimed": False, "state": state, "retry": True}
        log.info("run %s: not claimed (state %s): nothing to do", run_id, state)
        return {"run": run_id, "claimed": False, "state": state}
    sup = Supervisor(run, command=command, poll_seconds=poll_seconds)
    try:
        sup.start()
        rc = sup.loop()
        if rc == EXIT_SUPERSEDED and not sup.lost_ownership:
            # Fencing (spell/rundir.py): the process saw a newer attempt claim the run folder and stopped.
            sup.lost_ownership = True
            log.warning("run %s: attempt %s stopped itself: a newer attempt owns the run folder; recording nothing",
                        run_id, sup.attempt)
        if sup.lost_ownership:
            return {"run": run_id, "claimed": True, "state": "lost-ownership", "rc": rc}
        state = sup.finish_retrying(rc)
        return {"run": run_id, "claimed": True, "state": state, "rc": rc, "attempt": sup.attempt}
    except BaseException as exc:
        # Anything at all (a bug, the database gone for good, the worker shutting down) ends the
        # attempt: the process is stopped and the run says why. A run never stays RUNNING here.
        log.exception("run %s: the supervisor failed; ending the attempt", run_id)
        try:
            sup.stop_process()
        finally:
            state = sup.abandon(exc)
        if not isinstance(exc, Exception):
            raise  # the worker is shutting down: let it
        return {"run": run_id, "claimed": True, "state": state, "error": describe_failure(exc)}
