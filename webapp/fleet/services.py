"""Fleet logic: heartbeats, offline detection (the sweeper), drain / enable and queue membership.

Workers write their own rows (workers/heartbeat.py calls `heartbeat`); the sweeper (a periodic
Celery task, workers/fleet_tasks.py) marks silent workers offline and their RUNNING runs LOST
through the runs app's services, then requeues LOST runs automatically up to
settings.RUN_MAX_AUTO_REQUEUES times. Admin actions go to the worker through Celery control.

A heartbeat also ends runs whose supervisor is gone while the worker lives on:
- a new boot id under a known name (the worker restarted within WORKER_OFFLINE_AFTER_SECONDS, e.g.
  docker's restart with the same name and pid 1): the old process's RUNNING runs become LOST;
- the runs the worker says it supervises (its active run tasks): a RUNNING run of this worker that
  is not among them (its supervisor ended without recording how: a killed pool process, an outcome
  the database never took) becomes LOST.
Both spare runs claimed in the last supervision_grace() seconds (a claim can come before the beat
that reports it). LOST runs are then requeued by the sweeper's usual rule.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webapp.fleet.models import GPU_HISTORY_LENGTH, Gpu, Worker

log = logging.getLogger(__name__)

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
DEFAULT_RUN_QUEUES = ["cpu", "gpu.1", "gpu.8"]
CONTROL_TIMEOUT = 3.0


class FleetError(Exception):
    """An admin action that cannot be done; the message is shown to the admin as is."""


# --- settings ------------------------------------------------------------------------------------
def offline_after() -> int:
    return int(getattr(settings, "WORKER_OFFLINE_AFTER_SECONDS", 30))


def max_auto_requeues() -> int:
    return int(getattr(settings, "RUN_MAX_AUTO_REQUEUES", 3))


def supervision_grace() -> float:
    """Runs claimed this recently are never lost by a heartbeat (the beat may predate the claim)."""
    default = max(10.0, 2.0 * float(getattr(settings, "WORKER_HEARTBEAT_SECONDS", 5)))
    return float(getattr(settings, "WORKER_SUPERVISION_GRACE_SECONDS", default))


def known_queues() -> list[str]:
    """Queue names a run may ask for: the configured defaults plus every queue a worker has consumed."""
    names = {"cpu", *getattr(settings, "RUN_GPU_QUEUES", DEFAULT_RUN_QUEUES[1:])}
    for queues, configured in Worker.objects.values_list("queues", "configured_queues"):
        names.update(q for q in (queues or []) + (configured or []) if q != "default")
    return sorted(names)


def validate_queue_name(name: str) -> str:
    name = (name or "").strip()
    if not QUEUE_NAME_RE.match(name):
        raise FleetError(
            "A queue name is 1-100 characters: letters, digits, '.', '_' or '-' (for example cpu or gpu.8)."
        )
    return name


# --- the runs app, through its services ------------------------------------------------------------
def _run_model():
    from webapp.runs.models import Run

    return Run


def current_run_id(hostname: str) -> int | None:
    Run = _run_model()
    run = Run.objects.filter(worker_hostname=hostname, state=Run.State.RUNNING).order_by("-started_at").first()
    return run.pk if run else None


def _mark_lost(run, reason: str = "") -> bool:
    from webapp.runs import services as run_services

    return bool(run_services.mark_lost(run, reason=reason))


def _requeue(run) -> bool:
    from webapp.runs import services as run_services

    return bool(run_services.requeue(run, auto=True))


def gpus_serving(queue: str) -> int | None:
    """The most GPUs (their NVML inventory, from the heartbeats) of an online worker that consumes
    `queue`; None when no online worker consumes it. Never read from the queue's name."""
    most = None
    for worker in Worker.objects.filter(state=Worker.State.ONLINE).prefetch_related("gpus"):
        if queue in (worker.queues or []):
            most = max(most or 0, len(worker.gpus.all()))
    return most


# --- heartbeats ------------------------------------------------------------------------------------
def heartbeat(
    hostname: str,
    *,
    host: str = "",
    queues: list[str] | None = None,
    version: str = "",
    pid: int | None = None,
    gpus: list[dict] | None = None,
    gpu_note: str = "",
    boot_id: str = "",
    supervising: list[int] | None = None,
    now: datetime | None = None,
) -> Worker:
    """Record one heartbeat of a worker (creating its row on the first one).

    `boot_id`: random per start of the worker process; `supervising`: the ids of the runs it
    supervises right now (None: not reported). See the module docstring for what they end."""
    now = now or timezone.now()
    queues = sorted(set(queues or []))
    with transaction.atomic():
        worker, created = Worker.objects.select_for_update().get_or_create(
            hostname=hostname, defaults={"started_at": now, "configured_queues": queues, "pid": pid, "boot_id": boot_id}
        )
        if created:
            new_process = False
        elif boot_id and worker.boot_id:
            new_process = boot_id != worker.boot_id
        else:  # a worker that sends no boot id (or the first beat since the field exists): its pid
            new_process = pid is not None and worker.pid != pid
        if new_process:
            lose_runs_of(hostname, f"Worker {hostname} restarted: the process that ran this attempt is gone.",
                         keep=supervising or (), started_before=now - timedelta(seconds=supervision_grace()))
        elif supervising is not None:
            lose_runs_of(hostname, f"Worker {hostname} no longer supervises this run: its supervisor ended "
                                   "without recording how the attempt ended.",
                         keep=supervising, started_before=now - timedelta(seconds=supervision_grace()))
        if created or new_process:
            # A (re)started worker consumes what it was started with; old admin intent is gone with it.
            worker.state = Worker.State.ONLINE
            worker.started_at = now
            worker.configured_queues = queues
        elif worker.state == Worker.State.OFFLINE:
            worker.state = Worker.State.ONLINE
        worker.host, worker.queues, worker.version, worker.pid = host, queues, version[:200], pid
        worker.boot_id = boot_id[:64] or worker.boot_id
        worker.gpu_note = gpu_note[:300]
        worker.last_heartbeat = now
        worker.offline_since = None
        worker.current_run_id = current_run_id(hostname)
        if worker.state == Worker.State.DRAINING and worker.current_run_id is None:
            worker.state = Worker.State.DISABLED
        worker.save()
        _store_gpus(worker, gpus or [], now)
    return worker


def _store_gpus(worker: Worker, gpus: list[dict], now: datetime) -> None:
    seen = []
    stamp = round(now.timestamp(), 1)
    for reading in gpus:
        index = int(reading.get("index", len(seen)))
        seen.append(index)
        gpu = Gpu.objects.filter(worker=worker, index=index).first() or Gpu(worker=worker, index=index)
        gpu.uuid = str(reading.get("uuid") or "")[:100]
        gpu.name = str(reading.get("name") or "")[:200]
        gpu.memory_total = int(reading.get("memory_total") or 0)
        gpu.memory_used = int(reading.get("memory_used") or 0)
        gpu.utilization = reading.get("utilization")
        gpu.temperature = reading.get("temperature")
        gpu.history = (list(gpu.history or []) + [[stamp, gpu.utilization, gpu.memory_used]])[-GPU_HISTORY_LENGTH:]
        gpu.save()
    Gpu.objects.filter(worker=worker).exclude(index__in=seen).delete()


def mark_offline(worker: Worker, now: datetime | None = None) -> list[int]:
    """Mark a worker offline (once) and its RUNNING runs LOST. Returns the ids of the runs lost."""
    now = now or timezone.now()
    changed = Worker.objects.filter(pk=worker.pk).exclude(state=Worker.State.OFFLINE).update(
        state=Worker.State.OFFLINE, offline_since=now, current_run_id=None
    )
    if changed:
        log.warning("worker %s is offline (last heartbeat %s)", worker.hostname, worker.last_heartbeat)
    return lose_runs_of(worker.hostname)


def lose_runs_of(hostname: str, reason: str = "", *, keep=(), started_before: datetime | None = None) -> list[int]:
    """RUNNING runs of this worker -> LOST, except those in `keep` and those claimed at or after
    `started_before`. Returns the ids of the runs lost."""
    Run = _run_model()
    runs = Run.objects.filter(worker_hostname=hostname, state=Run.State.RUNNING).exclude(pk__in=list(keep))
    if started_before is not None:
        runs = runs.filter(started_at__lt=started_before)
    lost = []
    for run in runs:
        if _mark_lost(run, reason or f"Worker {hostname} stopped heartbeating."):
            log.warning("run %s lost: %s", run.pk, reason or f"worker {hostname} stopped heartbeating")
            lost.append(run.pk)
    return lost


def worker_shut_down(hostname: str) -> None:
    """A worker stopping cleanly says so at once instead of waiting for the sweeper."""
    worker = Worker.objects.filter(hostname=hostname).first()
    if worker is not None:
        mark_offline(worker)


# --- the sweeper -----------------------------------------------------------------------------------
def sweep(now: datetime | None = None) -> dict:
    """Stale state, swept: silent workers -> offline, their runs -> LOST, LOST runs -> requeued (up to N)."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=offline_after())
    offline, lost, requeued = [], [], []
    stale = Worker.objects.exclude(state=Worker.State.OFFLINE).filter(last_heartbeat__lt=deadline)
    for worker in stale:
        lost += mark_offline(worker, now)
        offline.append(worker.hostname)

    Run = _run_model()
    # RUNNING runs on a worker the fleet knows to be offline, or on none it has ever seen whose own
    # heartbeat is also stale (a worker killed before its first heartbeat).
    offline_hosts = Worker.objects.filter(state=Worker.State.OFFLINE).values("hostname")
    known_hosts = Worker.objects.values("hostname")
    orphans = Run.objects.filter(state=Run.State.RUNNING).filter(
        Q(worker_hostname__in=offline_hosts)
        | (Q(heartbeat_at__lt=deadline) & ~Q(worker_hostname__in=known_hosts))
    )
    for run in orphans:
        if _mark_lost(run, f"Worker {run.worker_hostname or '(none)'} is offline."):
            lost.append(run.pk)

    for run in Run.objects.filter(state=Run.State.LOST, auto_requeues__lt=max_auto_requeues()).order_by("pk"):
        if _requeue(run):
            requeued.append(run.pk)
    return {"offline": offline, "lost": sorted(set(lost)), "requeued": requeued}


# --- admin actions (Celery control) ----------------------------------------------------------------
def _control(method: str, worker: Worker, queue: str) -> None:
    from webapp.taskqueue import app

    if worker.state == Worker.State.OFFLINE:
        raise FleetError(f"{worker.hostname} is offline: start it again first.")
    try:
        replies = getattr(app.control, method)(queue, destination=[worker.hostname], reply=True, timeout=CONTROL_TIMEOUT)
    except Exception as exc:  # broker unreachable
        raise FleetError(f"Could not reach the broker: {type(exc).__name__}: {exc}") from exc
    answer = next((reply[worker.hostname] for reply in replies or [] if worker.hostname in reply), None)
    if answer is None:
        raise FleetError(f"{worker.hostname} did not answer within {CONTROL_TIMEOUT:.0f} s.")
    if "error" in answer:
        raise FleetError(f"{worker.hostname}: {answer['error']}")


def drain(worker: Worker) -> Worker:
    """Finish the current run, take no new one: stop consuming every queue."""
    if worker.state in (Worker.State.DRAINING, Worker.State.DISABLED):
        raise FleetError(f"{worker.hostname} is already {worker.get_state_display().lower()}.")
    for queue in list(worker.queues):
        _control("cancel_consumer", worker, queue)
    worker.state = Worker.State.DRAINING if worker.current_run_id else Worker.State.DISABLED
    worker.queues = []
    worker.save(update_fields=["state", "queues"])
    return worker


def enable(worker: Worker) -> Worker:
    """Consume the configured queues again."""
    if worker.state == Worker.State.ONLINE:
        raise FleetError(f"{worker.hostname} is already enabled.")
    for queue in worker.configured_queues:
        _control("add_consumer", worker, queue)
    worker.state = Worker.State.ONLINE
    worker.queues = sorted(worker.configured_queues)
    worker.save(update_fields=["state", "queues"])
    return worker


def add_queue(worker: Worker, queue: str) -> Worker:
    queue = validate_queue_name(queue)
    if queue in worker.configured_queues:
        raise FleetError(f"{worker.hostname} already has queue {queue}.")
    if worker.state == Worker.State.ONLINE:
        _control("add_consumer", worker, queue)
        worker.queues = sorted(set(worker.queues) | {queue})
    elif worker.state == Worker.State.OFFLINE:
        raise FleetError(f"{worker.hostname} is offline: start it again first.")
    worker.configured_queues = sorted(set(worker.configured_queues) | {queue})
    worker.save(update_fields=["queues", "configured_queues"])
    return worker


def remove_queue(worker: Worker, queue: str) -> Worker:
    queue = (queue or "").strip()
    if queue not in worker.configured_queues and queue not in worker.queues:
        raise FleetError(f"{worker.hostname} has no queue {queue or '(empty name)'}.")
    if queue in worker.queues:
        _control("cancel_consumer", worker, queue)
    elif worker.state == Worker.State.OFFLINE:
        raise FleetError(f"{worker.hostname} is offline: start it again first.")
    worker.queues = [q for q in worker.queues if q != queue]
    worker.configured_queues = [q for q in worker.configured_queues if q != queue]
    worker.save(update_fields=["queues", "configured_queues"])
    return worker


def forget(worker: Worker) -> None:
    """Remove an offline worker from the page (it reappears if it heartbeats again)."""
    if worker.state != Worker.State.OFFLINE:
        raise FleetError(f"{worker.hostname} is not offline: drain it and stop it first.")
    worker.delete()


# --- what the page shows ---------------------------------------------------------------------------
def worker_summary(worker: Worker, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    age = (now - worker.last_heartbeat).total_seconds() if worker.last_heartbeat else None
    return {
        "id": worker.pk,
        "hostname": worker.hostname,
        "host": worker.host,
        "state": worker.state,
        "state_label": worker.get_state_display(),
        "queues": worker.queues,
        "configured_queues": worker.configured_queues,
        "version": worker.version,
        "pid": worker.pid,
        "current_run_id": worker.current_run_id,
        "last_heartbeat": worker.last_heartbeat.isoformat() if worker.last_heartbeat else None,
        "heartbeat_age_s": round(age, 1) if age is not None else None,
        "gpu_note": worker.gpu_note,
        "gpus": [
            {
                "index": gpu.index, "uuid": gpu.uuid, "name": gpu.name,
                "memory_total": gpu.memory_total, "memory_used": gpu.memory_used,
                "memory_percent": gpu.memory_percent, "utilization": gpu.utilization,
                "temperature": gpu.temperature,
                "history": [point[1] for point in gpu.history],
                "points": sparkline_points([point[1] for point in gpu.history]),
            }
            for gpu in worker.gpus.all()
        ],
    }


def sparkline_points(values: list, width: int = 120, height: int = 24, length: int = GPU_HISTORY_LENGTH) -> str:
    """SVG polyline points for utilization percentages (missing readings count as 0), right-aligned."""
    values = [v if isinstance(v, (int, float)) else 0 for v in values][-length:]
    step = width / max(1, length - 1)
    offset = length - len(values)
    return " ".join(
        f"{(offset + i) * step:.1f},{height - (min(max(v, 0), 100) / 100) * height:.1f}" for i, v in enumerate(values)
    )


def fleet_snapshot() -> dict:
    now = timezone.now()
    workers = Worker.objects.prefetch_related("gpus").order_by("hostname")
    return {
        "time": time.time(),
        "heartbeat_seconds": getattr(settings, "WORKER_HEARTBEAT_SECONDS", 5),
        "workers": [worker_summary(w, now) for w in workers],
    }
