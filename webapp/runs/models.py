"""Models of the runs app: registered models, runs and what their training processes report.

A Run holds a frozen config (the resolved spell RunConfig as JSON) and its state; the worker
(workers/supervisor.py) claims it, and the relay (workers/relay.py) stores the process's events as
RunEvent rows (run-wide contiguous seq) and derives Sample and MetricPoint rows from them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from webapp.accounts.models import Team


class ModelEntryQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Shared models (no team) and those of `user`'s member teams (all for an admin)."""
        from webapp.accounts.models import teams_for

        if user.is_authenticated and user.is_staff:
            return self
        return self.filter(models.Q(team__isnull=True) | models.Q(team__in=teams_for(user, role="member")))

    def usable_for(self, team):
        """What a run of `team` may train or evaluate: shared models and the team's own."""
        return self.filter(models.Q(team__isnull=True) | models.Q(team=team))


class ModelEntry(models.Model):
    """A model runs may use (never an arbitrary path from a form): shared ones that admins register
    (no team), and a team's own, registered from its runs' checkpoints (copied under MODEL_ROOT, so
    run deletion and checkpoint rotation cannot take the weights away)."""

    NAME_MAX = 200

    objects = ModelEntryQuerySet.as_manager()

    name = models.CharField(max_length=NAME_MAX, unique=True)
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="models",
                             help_text="The team that owns it; empty = shared with every team (admins decide).")
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the folder's files (names and contents).")
    path = models.CharField(max_length=1000, help_text="Local Hugging Face folder (or hub id on a connected cluster).")
    max_positions = models.PositiveIntegerField(null=True, blank=True)
    trust_remote_code = models.BooleanField(
        default=False, help_text="Only for models whose code an admin has reviewed."
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class RunQuerySet(models.QuerySet):
    def for_teams(self, teams):
        return self.filter(team__in=teams)


class Run(models.Model):
    class State(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        PAUSED = "PAUSED", "Paused"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"
        LOST = "LOST", "Lost"

    class Action(models.TextChoices):
        NONE = "", "None"
        CANCEL = "cancel", "Cancel"
        PAUSE = "pause", "Pause"

    TERMINAL = (State.SUCCEEDED, State.FAILED, State.CANCELLED)
    ACTIVE = (State.QUEUED, State.RUNNING)

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=200)
    corpus = models.ForeignKey("corpora.Corpus", null=True, on_delete=models.SET_NULL, related_name="runs")
    model_entry = models.ForeignKey(ModelEntry, null=True, on_delete=models.SET_NULL, related_name="runs")
    # The team's evaluation sets the run evaluates on; the worker copies their items into the run
    # folder on the first attempt and points eval.sets there (the config holds no server paths).
    eval_sets = models.ManyToManyField("corpora.EvalSet", blank=True, related_name="runs")
    # The resolved RunConfig (RunConfig.to_dict()), frozen at launch: never edited afterwards.
    config = models.JSONField()
    preset = models.CharField(max_length=40, blank=True)
    queue = models.CharField(max_length=100, default="cpu")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    attempt = models.PositiveIntegerField(default=0, help_text="Attempts started (the worker increments it on claim).")
    requested_action = models.CharField(max_length=16, choices=Action.choices, default="", blank=True)
    error = models.TextField(blank=True)
    cloned_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    run_dir = models.CharField(max_length=1000, blank=True)
    auto_requeues = models.PositiveIntegerField(default=0)
    worker_hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True, help_text="The training process of the current attempt.")
    # Relay bookkeeping, updated in the same transaction as the events it stores.
    last_seq = models.BigIntegerField(default=-1)
    events_offset = models.BigIntegerField(default=0, help_text="Bytes of events.jsonl already stored.")
    last_step = models.IntegerField(default=0, help_text="The last finished step (its metrics stored).")
    # The latest `progress` event per phase of the current attempt (docs/events.md "progress"): the
    # work inside a step or an evaluation. Kept here, not as events: only the latest one matters.
    progress = models.JSONField(default=dict, blank=True)
    disk_bytes = models.BigIntegerField(default=0)
    # Human spot-checks of the verifier (webapp.audits): review_share, double_share, false_accept_alarm.
    audit = models.JSONField(default=dict, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["queue", "state", "queued_at"], name="run_queue_state")]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def path(self):
        from pathlib import Path

        return Path(self.run_dir) if self.run_dir else None

    def owned_folder(self):
        """The run's folder, only when it lies inside RUNS_ROOT (nothing else is ever deleted)."""
        from pathlib import Path

        if not self.run_dir:
            return None
        path = Path(self.run_dir).resolve()
        root = Path(settings.RUNS_ROOT).resolve()
        return path if path != root and root in path.parents else None

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE

    def state_message(self) -> dict:
        """What the page's websocket receives on a state change (kind "state")."""
        return {
            "state": self.state, "attempt": self.attempt, "requested_action": self.requested_action,
            "error": self.error, "last_seq": self.last_seq, "last_step": self.last_step,
            "heartbeat_at": self.heartbeat_at.isoformat() if self.heartbeat_at else None,
            "progress": self.current_progress(),
            "progress_line": self.progress_line(),
        }

    def progress_line(self) -> str:
        from spell.progress import summary

        return summary(self.current_progress())

    def current_progress(self) -> dict:
        """The current attempt's latest progress per phase while the run is active ({} otherwise),
        less the phases of steps already finished (an evaluation comes after its step's metrics)."""
        if not self.is_active:
            return {}
        return {
            k: v for k, v in (self.progress or {}).items()
            if isinstance(v, dict) and v.get("attempt") == self.attempt
            and (k == "eval" or not isinstance(v.get("step"), int) or v["step"] > self.last_step)
        }

    def queue_position(self) -> int | None:
        """1 for the next QUEUED run of its queue, None when not queued."""
        if self.state != self.State.QUEUED:
            return None
        ahead = Run.objects.filter(queue=self.queue, state=self.State.QUEUED)
        ahead = ahead.filter(models.Q(queued_at__lt=self.queued_at) | models.Q(queued_at=self.queued_at, pk__lt=self.pk))
        return ahead.count() + 1


class RunEvent(models.Model):
    """One line of the process's events.jsonl, with the run-wide contiguous seq."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    src_seq = models.BigIntegerField(default=0, help_text="seq inside events.jsonl")
    attempt = models.PositiveIntegerField(default=1)
    step = models.IntegerField(default=0)
    type = models.CharField(max_length=20)
    time = models.FloatField(null=True)
    payload = models.JSONField(default=dict)
    superseded = models.BooleanField(default=False)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="run_event_seq_unique")]
        indexes = [models.Index(fields=["run", "type", "seq"], name="run_event_type_seq")]

    def to_message(self) -> dict:
        return {
            "seq": self.seq, "attempt": self.attempt, "step": self.step, "type": self.type,
            "time": self.time, "payload": self.payload, "superseded": self.superseded,
        }


class Sample(models.Model):
    """One question / answer / verdict triple the process reported (every one is stored)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="samples")
    seq = models.BigIntegerField()
    index = models.PositiveIntegerField(default=0, help_text="Position inside the event (several triples per event)")
    step = models.IntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    task = models.CharField(max_length=40, blank=True)
    question = models.TextField(blank=True)
    reference = models.TextField(blank=True)
    response = models.TextField(blank=True)
    verdict = models.CharField(max_length=40, blank=True)
    majority = models.CharField(max_length=40, blank=True)
    rule_score = models.FloatField(null=True)
    rewards = models.JSONField(default=dict)
    votes = models.JSONField(default=list)
    disagreement = models.BooleanField(default=False, help_text="Verifier majority differs from the rule score.")
    split_votes = models.BooleanField(default=False, help_text="Verifier votes were not unanimous.")
    extra = models.JSONField(default=dict)
    superseded = models.BooleanField(default=False)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "seq", "index"], name="sample_seq_unique")]
        indexes = [
            models.Index(fields=["run", "id"], name="sample_run_id"),
            models.Index(fields=["run", "task", "id"], name="sample_run_task_id"),
            models.Index(fields=["run", "disagreement", "id"], name="sample_run_disagree_id"),
            models.Index(fields=["run", "step"], name="sample_run_step"),
        ]

    def to_dict(self) -> dict:
        return {
            "id": self.id, "seq": self.seq, "step": self.step, "attempt": self.attempt, "task": self.task,
            "question": self.question, "reference": self.reference, "response": self.response,
            "verdict": self.verdict, "majority": self.majority, "rule_score": self.rule_score,
            "rewards": self.rewards, "votes": self.votes, "disagreement": self.disagreement,
            "split_votes": self.split_votes, "superseded": self.superseded, **({"extra": self.extra} if self.extra else {}),
        }


class MetricPoint(models.Model):
    """One number of a metrics / eval event, for charts and exports (name is dotted: reward.responder)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points")
    seq = models.BigIntegerField()
    step = models.IntegerField()
    attempt = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200)
    value = models.FloatField(null=True)
    superseded = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq", "name"], name="metric_seq_name_unique")]
        indexes = [models.Index(fields=["run", "name", "step"], name="metric_run_name_step")]


@receiver(post_delete, sender=Run)
def _delete_run_folder(sender, instance, **kwargs):
    """Deleting a run (directly, or through its team from any path) deletes its folder once the
    delete is committed (a rolled-back delete keeps it). Registered models were copied out of it."""
    import shutil

    folder = instance.owned_folder()
    if folder is not None:
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
