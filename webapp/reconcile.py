"""The reconciler: the database is the record, the broker only a delivery. A Celery beat task
(`workers.fleet.reconcile`, every RECONCILE_SECONDS, queue `default`) calls `reconcile()`:

- a QUEUED run, or a PENDING corpus ingest / evaluation-set read, still unclaimed
  RECONCILE_AFTER_SECONDS after it was queued gets its task sent again: the message may never have
  left (a launch while the broker was down) or may have died with the broker (the embedded Redis
  keeps nothing across a restart). A duplicate is harmless: every task claims its row with a
  conditional UPDATE (QUEUED -> RUNNING, PENDING -> INGESTING), so the second one finds nothing to
  claim and exits. Re-sends of one item back off (N, 2N, 4N, ... at most RECONCILE_MAX_BACKOFF_SECONDS
  apart, tracked in Redis), so a run that is only waiting behind a long one does not fill the queue.
  A run whose team is at its concurrent-run quota is skipped: its task is waiting by design
  (workers.run_tasks retries it);
- an ingest stuck INGESTING past INGEST_DEADLINE_SECONDS since its upload (its worker died: a
  redelivered task finds it claimed and exits) is FAILED with a message that says so.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

log = logging.getLogger(__name__)

STUCK_INGEST = ("The ingest did not finish within {hours:g} h of the upload: the worker running it probably "
                "stopped. Delete this and upload again.")
SEND_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def after_seconds() -> float:
    return float(getattr(settings, "RECONCILE_AFTER_SECONDS", 120))


def ingest_deadline_seconds() -> float:
    return float(getattr(settings, "INGEST_DEADLINE_SECONDS", 6 * 3600))


def max_backoff_seconds() -> float:
    return float(getattr(settings, "RECONCILE_MAX_BACKOFF_SECONDS", 3600))


class Backoff:
    """When an item may be sent again: at once the first time, then after N, 2N, 4N ... seconds
    (at most max_backoff_seconds()). Kept in Redis, beside the messages it stands in for: if the
    broker loses them (a restart), it loses this too and the items are sent again at once."""

    PREFIX = "spell:reconcile:"

    def __init__(self, client=None):
        if client is None:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        self.client = client

    def due(self, key: str) -> bool:
        hold, count = f"{self.PREFIX}{key}:hold", f"{self.PREFIX}{key}:count"
        wait = after_seconds()
        n = int(self.client.get(count) or 0)
        if not self.client.set(hold, 1, nx=True, ex=max(1, int(min(wait * 2 ** n, max_backoff_seconds())))):
            return False  # sent again less than its back-off ago
        self.client.set(count, n + 1, ex=7 * 24 * 3600)
        return True


def _send(name: str, args: list, queue: str) -> bool:
    from webapp import taskqueue

    try:
        taskqueue.send(name, args, queue, retry=True, retry_policy=SEND_RETRY)
    except Exception as exc:  # kombu OperationalError, redis ConnectionError: the next round tries again
        log.error("reconcile: could not send %s%s to %s: %s", name, args, queue, exc)
        return False
    return True


def stale_runs(cutoff: datetime):
    """QUEUED runs queued before `cutoff`, less those of teams at their concurrent-run quota."""
    from webapp.accounts.models import Team
    from webapp.runs.models import Run

    busy = (Team.objects.annotate(running=Count("runs", filter=Q(runs__state=Run.State.RUNNING)))
            .filter(running__gte=F("concurrent_run_quota")).values("pk"))
    return (Run.objects.filter(state=Run.State.QUEUED, queued_at__lt=cutoff).exclude(team__in=busy)
            .order_by("queued_at", "pk").only("pk", "queue"))


def fail_stuck_ingests(now: datetime) -> dict[str, list[int]]:
    """INGESTING past the deadline -> FAILED (conditional: an ingest that just finished keeps its result)."""
    from webapp.corpora.models import Cluster, Corpus, Document, EvalSet

    cutoff = now - timedelta(seconds=ingest_deadline_seconds())
    message = STUCK_INGEST.format(hours=round(ingest_deadline_seconds() / 3600, 2))
    failed: dict[str, list[int]] = {"corpora": [], "eval_sets": []}
    for pk in Corpus.objects.filter(status=Corpus.Status.INGESTING, created_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            if Corpus.objects.filter(pk=pk, status=Corpus.Status.INGESTING).update(
                    status=Corpus.Status.FAILED, error=message, finished_at=now):
                Document.objects.filter(corpus_id=pk).delete()  # nothing half-ingested is left
                Cluster.objects.filter(corpus_id=pk).delete()
                failed["corpora"].append(pk)
    for pk in EvalSet.objects.filter(status=EvalSet.Status.INGESTING, created_at__lt=cutoff).values_list("pk", flat=True):
        if EvalSet.objects.filter(pk=pk, status=EvalSet.Status.INGESTING).update(
                status=EvalSet.Status.FAILED, error=message, finished_at=now):
            failed["eval_sets"].append(pk)
    for kind, pks in failed.items():
        if pks:
            log.warning("reconcile: %s %s stuck ingesting past the deadline: failed", kind, pks)
    return failed


def reconcile(now: datetime | None = None, backoff: Backoff | None = None) -> dict:
    """One round (see the module docstring). Returns what it did, by kind and id."""
    from webapp import taskqueue
    from webapp.corpora.models import Corpus, EvalSet

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=after_seconds())
    backoff = backoff or Backoff()
    sent: dict[str, list[int]] = {"runs": [], "corpora": [], "eval_sets": []}
    for run in stale_runs(cutoff):
        if backoff.due(f"run:{run.pk}") and _send(taskqueue.RUN_SPELL, [run.pk], run.queue):
            sent["runs"].append(run.pk)
    for kind, model, task in (("corpora", Corpus, taskqueue.INGEST_CORPUS),
                              ("eval_sets", EvalSet, taskqueue.INGEST_EVAL_SET)):
        for pk in model.objects.filter(status=model.Status.PENDING, created_at__lt=cutoff).order_by("pk").values_list(
                "pk", flat=True):
            if backoff.due(f"{kind}:{pk}") and _send(task, [pk], "default"):
                sent[kind].append(pk)
    for kind, pks in sent.items():
        if pks:
            log.warning("reconcile: sent the tasks of %s %s again (unclaimed for over %.0f s)", kind, pks, after_seconds())
    return {"sent": sent, "failed": fail_stuck_ingests(now)}
