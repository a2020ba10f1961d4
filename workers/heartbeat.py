"""The worker's heartbeat: a thread in the Celery worker's main process that reports, every
settings.WORKER_HEARTBEAT_SECONDS, who it is (host, queues, version, pid, a boot id drawn at random
when the process starts), the runs it supervises right now (its active run tasks) and its GPUs as
NVML sees them (nvidia-ml-py), or "no GPU" on a CPU worker. Started from Celery's worker_ready signal and
stopped on worker_shutdown (both connected in workers/fleet_tasks.py).

The fleet app (webapp.fleet.services) stores the readings; the sweeper marks a worker that stops
heartbeating offline and its runs LOST; a new boot id under a known name, or a RUNNING run the
worker no longer supervises, makes those runs LOST at once (webapp/fleet/services.py heartbeat).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from webapp import task_names

log = logging.getLogger(__name__)

BOOT_ID = uuid.uuid4().hex  # this worker process's start: a restart under the same name draws another
RUN_TASK = task_names.RUN_SPELL


def supervised_runs() -> list[int] | None:
    """The runs this worker process supervises now: the run ids of its active `run_spell` tasks
    (Celery's worker state, kept in the main process for every pool). None when it cannot tell."""
    from celery.worker import state

    try:
        requests = list(state.active_requests)
    except RuntimeError:  # the set changed while it was copied: say nothing this beat
        return None
    ids = set()
    for request in requests:
        if getattr(request, "task_name", None) == RUN_TASK:
            try:
                ids.add(int(request.args[0]))
            except (TypeError, ValueError, IndexError):
                continue
    return sorted(ids)


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def read_gpus(nvml=None) -> tuple[list[dict], str]:
    """The GPUs NVML sees: ([{index, uuid, name, memory_total, memory_used, utilization, temperature}], note).

    On a machine without an NVIDIA driver (or without nvidia-ml-py) the list is empty and the note
    says "no GPU (why)". A reading NVML does not support on a device is None, not an error.
    """
    if nvml is None:
        try:
            import pynvml as nvml  # from the nvidia-ml-py package
        except ImportError:
            return [], "no GPU (nvidia-ml-py is not installed)"
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded on a CPU machine
        return [], f"no GPU ({_text(exc) or type(exc).__name__})"
    gpus: list[dict] = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            gpu = {"index": index, "uuid": "", "name": "", "memory_total": 0, "memory_used": 0,
                   "utilization": None, "temperature": None}
            for key, read in (
                ("name", lambda: _text(nvml.nvmlDeviceGetName(handle))),
                ("uuid", lambda: _text(nvml.nvmlDeviceGetUUID(handle))),
                ("memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle)),
                ("utilization", lambda: int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
                ("temperature", lambda: int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
            ):
                try:
                    value = read()
                except Exception as exc:  # NotSupported on some devices (MIG slices, old boards)
                    log.debug("NVML %s of GPU %d: %s", key, index, exc)
                    continue
                if key == "memory":
                    gpu["memory_total"], gpu["memory_used"] = int(value.total), int(value.used)
                else:
                    gpu[key] = value
            gpus.append(gpu)
    except Exception as exc:
        return gpus, f"NVML error: {_text(exc)}"
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    return gpus, "" if gpus else "no GPU (NVML found no device)"


def worker_version() -> str:
    import celery

    try:
        from spell.provenance import code_version

        code = code_version()
    except Exception:  # the version is informative; never stop a worker for it
        code = "unknown"
    return f"{code} (celery {celery.__version__})"


class Heartbeat(threading.Thread):
    """Reports this worker to the fleet every `interval` seconds until `stop()`."""

    def __init__(self, hostname: str, queues=lambda: [], interval: float | None = None, nvml=None,
                 supervising=lambda: None, boot_id: str = BOOT_ID):
        super().__init__(name=f"fleet-heartbeat-{hostname}", daemon=True)
        from django.conf import settings

        self.hostname = hostname
        self.queues = queues
        self.interval = float(interval or getattr(settings, "WORKER_HEARTBEAT_SECONDS", 5))
        self.nvml = nvml
        self.supervising = supervising  # () -> run ids, or None when not known
        self.boot_id = boot_id
        self.version = worker_version()
        self.beats = 0
        self._stop_event = threading.Event()

    def beat(self) -> None:
        from webapp.fleet import services

        gpus, note = read_gpus(self.nvml)
        try:
            queues = list(self.queues())
        except Exception:  # the consumer is being rebuilt (broker reconnect)
            queues = []
        services.heartbeat(
            self.hostname, host=socket.gethostname(), queues=queues, version=self.version,
            pid=os.getpid(), gpus=gpus, gpu_note=note, boot_id=self.boot_id, supervising=self.supervising(),
        )
        self.beats += 1

    def run(self) -> None:
        from django.db import close_old_connections, connection

        try:
            while True:
                try:
                    self.beat()
                except Exception:  # the database restarting must not kill the heartbeat
                    log.exception("fleet heartbeat of %s failed", self.hostname)
                    close_old_connections()
                if self._stop_event.wait(self.interval):
                    break
        finally:
            connection.close()

    def stop(self, timeout: float = 10) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


_current: Heartbeat | None = None


def consumer_queues(consumer):
    """A callable giving the queues `consumer` (a Celery worker Consumer) consumes right now."""

    def queues() -> list[str]:
        task_consumer = getattr(consumer, "task_consumer", None)
        return sorted(q.name for q in task_consumer.queues) if task_consumer is not None else []

    return queues


def start(consumer) -> Heartbeat:
    """worker_ready: start the heartbeat thread of this worker (once)."""
    global _current
    if _current is not None and _current.is_alive():
        return _current
    _current = Heartbeat(consumer.hostname, consumer_queues(consumer), supervising=supervised_runs)
    _current.start()
    log.info("fleet heartbeat of %s every %.0f s", consumer.hostname, _current.interval)
    return _current


def stop() -> None:
    """worker_shutdown: stop the thread and say at once that this worker is gone."""
    global _current
    heartbeat, _current = _current, None
    if heartbeat is None:
        return
    heartbeat.stop()
    try:
        from django.db import connection

        from webapp.fleet import services

        services.worker_shut_down(heartbeat.hostname)
        connection.close()
    except Exception:
        log.exception("could not mark %s offline at shutdown", heartbeat.hostname)
