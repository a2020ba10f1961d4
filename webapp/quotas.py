"""A team's quotas beyond concurrency (the claim enforces that one, webapp/runs/lifecycle.py): how
many runs may wait QUEUED, and how much disk its corpora, evaluation sets and runs may use. Launch
(form, API, clone) and uploads (corpora, evaluation sets) ask here; the team page shows the usage."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

GIB = 1 << 30


class QuotaExceeded(Exception):
    """A launch or upload the team's quota does not allow; the message says what to do."""


@dataclass
class Usage:
    queued_runs: int
    queued_quota: int
    disk_bytes: int
    disk_quota_bytes: int  # 0: no limit

    @property
    def disk_percent(self) -> int | None:
        return round(100 * self.disk_bytes / self.disk_quota_bytes) if self.disk_quota_bytes else None


def usage(team) -> Usage:
    from webapp.corpora.models import Corpus, EvalSet
    from webapp.runs.models import Run

    disk = sum((model.objects.filter(team=team).aggregate(b=Sum("disk_bytes"))["b"] or 0)
               for model in (Corpus, EvalSet, Run))
    return Usage(queued_runs=Run.objects.filter(team=team, state=Run.State.QUEUED).count(),
                 queued_quota=team.queued_run_quota, disk_bytes=disk, disk_quota_bytes=team.disk_quota_gib * GIB)


def _size(n: int) -> str:
    from webapp.uploads import size_text

    return size_text(n)


def check_can_queue(team) -> None:
    now = usage(team)
    if now.queued_runs >= now.queued_quota:
        raise QuotaExceeded(f"Team {team} has {now.queued_runs} runs waiting in the queue, its limit "
                            f"({now.queued_quota}). Wait for some to start, cancel one, or ask an admin to raise it.")


def check_can_store(team, incoming_bytes: int) -> None:
    now = usage(team)
    if now.disk_quota_bytes and now.disk_bytes + incoming_bytes > now.disk_quota_bytes:
        raise QuotaExceeded(f"Team {team} uses {_size(now.disk_bytes)} of its {_size(now.disk_quota_bytes)} disk "
                            f"quota; this upload ({_size(incoming_bytes)}) does not fit. Delete old runs or corpora, "
                            "or ask an admin to raise the quota.")
