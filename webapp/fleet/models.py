"""The fleet: Celery workers as they report themselves (heartbeats), and their GPUs.

A worker row is written by the worker's own heartbeat thread (workers/heartbeat.py); the web app
only reads it, and admins change what it consumes through Celery control (services.py).
"""

from __future__ import annotations

from django.db import models

GPU_HISTORY_LENGTH = 60  # samples kept per GPU for the sparklines


class Worker(models.Model):
    class State(models.TextChoices):
        ONLINE = "online", "Online"
        OFFLINE = "offline", "Offline"  # silent for WORKER_OFFLINE_AFTER_SECONDS
        DRAINING = "draining", "Draining"  # finishes its current run, takes no new one
        DISABLED = "disabled", "Disabled"  # drained: consumes no queue

    hostname = models.CharField(max_length=255, unique=True)  # Celery node name, e.g. gpu1@node-7
    host = models.CharField(max_length=255, blank=True)  # the machine's name
    queues = models.JSONField(default=list, blank=True)  # queues the worker consumes, as last reported
    configured_queues = models.JSONField(default=list, blank=True)  # queues admins want (restored by enable)
    version = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    # Random per start of the worker process (workers/heartbeat.py): a new one under a known name
    # means the old process is gone, even when the name and the pid are the same (docker restarts).
    boot_id = models.CharField(max_length=64, blank=True)
    current_run_id = models.PositiveBigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ONLINE)
    gpu_note = models.CharField(max_length=300, blank=True)  # "no GPU (...)" on a CPU worker
    started_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    offline_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_alive(self) -> bool:
        return self.state != self.State.OFFLINE


class Gpu(models.Model):
    """One GPU of a worker, its latest reading and a short history (for the sparklines)."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField()
    uuid = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=200, blank=True)
    memory_total = models.PositiveBigIntegerField(default=0)  # bytes
    memory_used = models.PositiveBigIntegerField(default=0)  # bytes
    utilization = models.PositiveSmallIntegerField(null=True, blank=True)  # percent
    temperature = models.PositiveSmallIntegerField(null=True, blank=True)  # Celsius
    # [[unix time, utilization %, memory used bytes], ...] oldest first, at most GPU_HISTORY_LENGTH
    history = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["worker", "index"]
        constraints = [models.UniqueConstraint(fields=["worker", "index"], name="one_gpu_per_index")]

    def __str__(self) -> str:
        return f"{self.worker.hostname} GPU{self.index} {self.name}"

    @property
    def memory_percent(self) -> float | None:
        return round(100 * self.memory_used / self.memory_total, 1) if self.memory_total else None
