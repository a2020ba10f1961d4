"""Every change of a run's state, in one place: the views and the API (through runs/services.py), the
supervisor and the fleet sweeper all move runs through these functions and nothing else writes
`Run.state`.

    from                     to                                   who                function
    (a new row)              QUEUED                               launch             INITIAL (services.launch)
    QUEUED                   RUNNING (attempt + 1)                a worker           claim()
    QUEUED, PAUSED, LOST     CANCELLED                            a person           cancel()
    RUNNING                  RUNNING, requested_action = cancel   a person           cancel()
    RUNNING                  RUNNING, requested_action = pause    a person           request_pause()
    RUNNING (attempt n)      SUCCEEDED, FAILED, CANCELLED,        the supervisor     end()
                             PAUSED or LOST                       of attempt n
    RUNNING                  LOST                                 the sweeper        mark_lost()
    PAUSED, FAILED, LOST     QUEUED                               a person           resume()
    LOST                     QUEUED (auto_requeues + 1, up to N)  the sweeper        requeue(auto=True)
    LOST, FAILED, PAUSED     QUEUED                               an admin           requeue()

Each change is one conditional UPDATE (WHERE state IN <from> [AND attempt = n]) that reports whether
this call made it: two callers racing (a cancel and the end of the attempt, two sweepers, a
redelivered task) never both win, and an attempt that was superseded cannot write its outcome over
the next one's. Each change that happened sends the run's state to its page once the transaction
commits. Sending the task of a queued run is the caller's business (runs/services.py)."""

from __future__ import annotations

from typing import Any, Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp.runs.models import Run
from webapp.storable import storable_text

State = Run.State
INITIAL = State.QUEUED

CANCELLABLE_IDLE = (State.QUEUED, State.PAUSED, State.LOST)
RESUMABLE = (State.PAUSED, State.FAILED, State.LOST)
REQUEUEABLE_BY_HAND = (State.LOST, State.FAILED, State.PAUSED)
ENDINGS = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.PAUSED, State.LOST)


def _publish_after_commit(run_id: int) -> None:
    from webapp.runs.live import publish_state

    transaction.on_commit(lambda: publish_state(run_id))


def _change(run_id: int, from_states: Iterable[str], *, of_attempt: int | None = None,
            extra_filter: dict | None = None, **updates: Any) -> bool:
    """The one conditional UPDATE every transition is; True when this call changed the row."""
    rows = Run.objects.filter(pk=run_id, state__in=list(from_states), **(extra_filter or {}))
    if of_attempt is not None:
        rows = rows.filter(attempt=of_attempt)
    with transaction.atomic():
        changed = rows.update(**updates) == 1
        if changed:
            _publish_after_commit(run_id)
    return changed


# --- a worker takes a queued run ----------------------------------------------------------------------
def claim(run_id: int, hostname: str = "") -> Run | None:
    """QUEUED -> RUNNING with a new attempt, only if exactly this one row changes (a redelivered
    task, or a run cancelled while queued, finds nothing to claim) and the run's team is under its
    concurrent-run quota. Returns the claimed run, or None."""
    now = timezone.now()
    with transaction.atomic():
        if over_team_quota(run_id):
            return None
        claimed = _change(run_id, (State.QUEUED,), state=State.RUNNING, attempt=F("attempt") + 1,
                          worker_hostname=hostname[:255], started_at=now, heartbeat_at=now, requested_action="",
                          error="", finished_at=None, pid=None)
    return Run.objects.select_related("corpus").get(pk=run_id) if claimed else None


def over_team_quota(run_id: int) -> bool:
    """True when the run's team already has `concurrent_run_quota` runs RUNNING. Called inside the
    claim's transaction with the team row locked, so two workers cannot both take the last slot."""
    from webapp.accounts.models import Team

    team_id = Run.objects.filter(pk=run_id, state=State.QUEUED).values_list("team_id", flat=True).first()
    if team_id is None:
        return False  # nothing to claim anyway
    team = Team.objects.select_for_update().get(pk=team_id)
    return Run.objects.filter(team_id=team_id, state=State.RUNNING).count() >= team.concurrent_run_quota


# --- the supervisor of attempt n ends it --------------------------------------------------------------
def end(run_id: int, attempt: int, state: str, error: str = "") -> bool:
    """RUNNING (attempt n) -> its outcome. False when the run is no longer this attempt's (cancelled
    while idle, lost and requeued: a newer attempt owns it)."""
    if state not in ENDINGS:
        raise ValueError(f"{state!r} is not how an attempt ends ({', '.join(ENDINGS)})")
    return _change(run_id, (State.RUNNING,), of_attempt=attempt, state=state, error=storable_text(error),
                   finished_at=timezone.now(), requested_action="", pid=None)


# --- people -------------------------------------------------------------------------------------------
def cancel(run_id: int) -> str | None:
    """"cancelled" (an idle run ends at once), "requested" (a running one: its supervisor stops the
    process and ends the attempt CANCELLED), or None when the run's state has no cancel."""
    if _change(run_id, CANCELLABLE_IDLE, state=State.CANCELLED, finished_at=timezone.now(), requested_action=""):
        return "cancelled"
    if _change(run_id, (State.RUNNING,), requested_action=Run.Action.CANCEL):
        return "requested"
    return None


def request_pause(run_id: int) -> bool:
    """A running run with no other request: its supervisor checkpoints, stops, ends it PAUSED."""
    return _change(run_id, (State.RUNNING,), extra_filter={"requested_action": ""}, requested_action=Run.Action.PAUSE)


def resume(run_id: int) -> bool:
    """PAUSED, FAILED or LOST -> QUEUED, for a new attempt (from the last checkpoint when one exists)."""
    return _change(run_id, RESUMABLE, state=State.QUEUED, requested_action="", error="", queued_at=timezone.now(),
                   finished_at=None)


# --- the sweeper and admins ---------------------------------------------------------------------------
def mark_lost(run_id: int, reason: str) -> bool:
    """RUNNING -> LOST: its worker went offline or restarted (any attempt: the worker is gone)."""
    return _change(run_id, (State.RUNNING,), state=State.LOST, error=storable_text(reason), finished_at=timezone.now(),
                   requested_action="")


def requeue(run_id: int, *, auto: bool = False) -> bool:
    """LOST -> QUEUED for the sweeper (auto: at most RUN_MAX_AUTO_REQUEUES times a run); LOST,
    FAILED or PAUSED -> QUEUED for an admin. The next attempt continues from the last checkpoint."""
    updates: dict[str, Any] = {"state": State.QUEUED, "requested_action": "", "queued_at": timezone.now(),
                               "finished_at": None}
    if auto:
        updates["auto_requeues"] = F("auto_requeues") + 1
        return _change(run_id, (State.LOST,), extra_filter={"auto_requeues__lt": settings.RUN_MAX_AUTO_REQUEUES},
                       **updates)
    return _change(run_id, REQUEUEABLE_BY_HAND, **updates)
