"""The review queue's logic: enqueue judgments while a run goes, reserve items to annotators, take
their labels (logged), and turn labels into numbers about the verifier (metrics.py does the maths).

Views call these; none of them trusts the caller about teams except where it says so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Iterator

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from webapp.audits import sampling
from webapp.audits.metrics import LABELS, UNSURE, Confusion, cohens_kappa, human_truth
from webapp.audits.models import Label, ReviewItem, ReviewLog
from webapp.runs.models import Run, Sample

UNBIASED_REASONS = (ReviewItem.Reason.RANDOM, ReviewItem.Reason.FIRST)
CLAIM_CANDIDATES = 25  # items tried per reservation before giving up (each try is one UPDATE)
NOTE_MAX = 5000


class ReviewError(Exception):
    """Bad input from the annotator (a 400)."""


class ReviewConflict(Exception):
    """The item cannot take this label now (a 409): reserved by someone else, or complete."""


def reservation_seconds() -> int:
    return int(getattr(settings, "REVIEW_RESERVATION_SECONDS", 300))


def audit_config(run: Run) -> sampling.AuditConfig:
    return sampling.AuditConfig.from_run_config({"audit": run.audit})


# ====================================================================== enqueue (the relay's hook)

def enqueue_for_review(samples: Iterable[Sample]) -> int:
    """Queue the share of `samples` (new rows the relay just stored) that the run's audit settings
    draw; returns how many items were created. Safe to call again with the same samples: the draw
    is fixed by the sample id and an item is unique per sample."""
    samples = _stored(list(samples))
    by_run: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        if not s.superseded:
            by_run[s.run_id].append(s)
    created = 0
    for run_id, group in by_run.items():
        run = Run.objects.only("id", "team_id", "config").filter(pk=run_id).first()
        if run is None:
            continue
        cfg = audit_config(run)
        if cfg.review_share <= 0:
            continue
        seen_strata = set(ReviewItem.objects.filter(run_id=run_id).values_list("task", "stage").distinct())
        items = []
        for s in sorted(group, key=lambda s: s.pk):
            yes = sampling.verifier_yes(s.verdict, s.majority)
            if yes is None or not (s.response or "").strip():
                continue  # no verifier decision to check
            stage = sampling.stage_of(s.extra)
            reason = sampling.reason_for(s.pk, cfg, disagreement=s.disagreement, split_votes=s.split_votes)
            if reason is None and (s.task, stage) not in seen_strata:
                reason = ReviewItem.Reason.FIRST
            seen_strata.add((s.task, stage))
            if reason is None:
                continue
            items.append(ReviewItem(
                sample_id=s.pk, run_id=run_id, team_id=run.team_id, task=s.task, stage=stage, step=s.step,
                verifier_yes=yes, reason=reason, priority=sampling.PRIORITY.get(reason, 0),
                needed_labels=sampling.needed_labels(s.pk, cfg),
            ))
        if items:
            before = ReviewItem.objects.filter(run_id=run_id).count()
            ReviewItem.objects.bulk_create(items, ignore_conflicts=True, batch_size=500)
            created += ReviewItem.objects.filter(run_id=run_id).count() - before
    return created


def _stored(samples: list[Sample]) -> list[Sample]:
    """`bulk_create(ignore_conflicts=True)` leaves pk unset: look those up by (run, seq, index)."""
    missing = [s for s in samples if s.pk is None]
    if not missing:
        return samples
    found = {}
    for run_id in {s.run_id for s in missing}:
        seqs = {s.seq for s in missing if s.run_id == run_id}
        for row in Sample.objects.filter(run_id=run_id, seq__in=seqs):
            found[(run_id, row.seq, row.index)] = row
    return [s for s in samples if s.pk is not None] + [
        found[key] for key in ((s.run_id, s.seq, s.index) for s in missing) if key in found
    ]


# ====================================================================== reservations

def _free(now) -> Q:
    return Q(reserved_by__isnull=True) | Q(reserved_until__lt=now)


def release_expired(run: Run | None = None, now=None) -> int:
    """Clear reservations whose time is up (reserve_next also treats them as free)."""
    now = now or timezone.now()
    items = ReviewItem.objects.filter(reserved_until__lt=now)
    if run is not None:
        items = items.filter(run=run)
    return items.update(reserved_by=None, reserved_until=None)


def _claim(item_id: int, user, now) -> bool:
    """Reserve one item with a conditional UPDATE; True only when exactly this row changed."""
    changed = (
        ReviewItem.objects.filter(pk=item_id, label_count__lt=F("needed_labels"))
        .filter(_free(now) | Q(reserved_by=user))
        .exclude(labels__annotator=user)
        .update(reserved_by=user, reserved_until=now + timedelta(seconds=reservation_seconds()))
    )
    return changed == 1


def candidates(run: Run, user, now=None):
    """Items of `run` that `user` could take now, best first."""
    now = now or timezone.now()
    return (
        ReviewItem.objects.filter(run=run).pending()
        .filter(_free(now) | Q(reserved_by=user))
        .exclude(labels__annotator=user)
        .order_by("-priority", "id")
    )


def reserve_next(user, run: Run, skip: int | None = None) -> ReviewItem | None:
    """Reserve the next item of `run` for `user` (the caller checked the user is in the run's team).

    The user's other unlabelled reservations in the run are given back first (one open item per
    annotator and run); `skip` (the item they just moved past) is served only when nothing else is.
    """
    now = timezone.now()
    release_expired(run, now)
    ReviewItem.objects.filter(run=run, reserved_by=user).exclude(labels__annotator=user).update(
        reserved_by=None, reserved_until=None)
    for exclude_skipped in (True, False):
        queue = candidates(run, user, now)
        if skip and exclude_skipped:
            queue = queue.exclude(pk=skip)
        for item_id in queue.values_list("id", flat=True)[:CLAIM_CANDIDATES]:
            if _claim(item_id, user, now):  # another annotator may have taken it since the SELECT
                return ReviewItem.objects.select_related("run", "sample").get(pk=item_id)
        if not skip:
            break
    return None


def reserve_item(item: ReviewItem, user) -> bool:
    """Reserve this item for `user` when they may label it now (opening an item page)."""
    if item.reserved_by_id == user.pk and item.reserved_until and item.reserved_until > timezone.now():
        return True
    if _claim(item.pk, user, timezone.now()):
        item.refresh_from_db(fields=["reserved_by", "reserved_until"])
        return True
    return False


# ====================================================================== labels

def submit_label(user, item: ReviewItem, label: str, note: str = "") -> Label:
    """Store (or change) `user`'s label on `item` and log the change with before and after."""
    if label not in LABELS:
        raise ReviewError("Choose a label: equivalent (1), not equivalent (2) or unsure (3).")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReviewError(f"The note is too long ({len(note)} characters; at most {NOTE_MAX}).")
    after = {"label": label, "note": note}
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item.pk)
        existing = Label.objects.filter(item=item, annotator=user).first()
        if existing is not None:
            before = existing.as_dict()
            if before != after:
                existing.label, existing.note = label, note
                existing.save(update_fields=["label", "note", "updated"])
                ReviewLog.record(user, "relabel", item, before, after)
            return existing
        now = timezone.now()
        if item.is_complete:
            raise ReviewConflict("This item already has all the labels it needs.")
        if item.reserved_by_id not in (None, user.pk) and item.reserved_until and item.reserved_until > now:
            raise ReviewConflict("Another annotator has this item reserved; take the next one.")
        try:
            with transaction.atomic():
                new = Label.objects.create(item=item, annotator=user, label=label, note=note)
        except IntegrityError as exc:  # the same user from a second tab
            raise ReviewConflict("You already labelled this item.") from exc
        count = Label.objects.filter(item=item).count()
        ReviewItem.objects.filter(pk=item.pk).update(label_count=count)
        ReviewItem.objects.filter(pk=item.pk, reserved_by=user).update(reserved_by=None, reserved_until=None)
        ReviewLog.record(user, "label", item, None, after)
        return new


def neighbours(user, item: ReviewItem) -> tuple[int | None, int | None]:
    """(previous, next) items in the order `user` labelled this run's items; next None = the queue."""
    mine = Label.objects.filter(annotator=user, item__run_id=item.run_id)
    current = mine.filter(item=item).first()
    if current is None:
        last = mine.order_by("-created", "-id").values_list("item_id", flat=True).first()
        return last, None
    before = mine.filter(Q(created__lt=current.created) | Q(created=current.created, id__lt=current.id))
    after = mine.filter(Q(created__gt=current.created) | Q(created=current.created, id__gt=current.id))
    return (before.order_by("-created", "-id").values_list("item_id", flat=True).first(),
            after.order_by("created", "id").values_list("item_id", flat=True).first())


# ====================================================================== numbers

@dataclass(frozen=True)
class Filters:
    task: str | None = None
    stage: int | None = None
    step_min: int | None = None
    step_max: int | None = None
    unbiased: bool = False

    def apply(self, items):
        if self.task:
            items = items.filter(task=self.task)
        if self.stage is not None:
            items = items.filter(stage=self.stage)
        if self.step_min is not None:
            items = items.filter(step__gte=self.step_min)
        if self.step_max is not None:
            items = items.filter(step__lte=self.step_max)
        if self.unbiased:
            items = items.filter(reason__in=UNBIASED_REASONS)
        return items

    def as_dict(self) -> dict:
        return {"task": self.task, "stage": self.stage, "step_min": self.step_min, "step_max": self.step_max,
                "sample": "unbiased" if self.unbiased else "all"}


@dataclass(frozen=True)
class Row:
    """A labelled item, as the metrics need it (labels in the order they were given)."""

    item_id: int
    task: str
    stage: int | None
    step: int
    reason: str
    verifier_yes: bool
    labels: tuple[str, ...]


def labelled_rows(run: Run, filters: Filters = Filters()) -> list[Row]:
    items = filters.apply(ReviewItem.objects.filter(run=run, label_count__gt=0))
    fields = {i["id"]: i for i in items.values("id", "task", "stage", "step", "reason", "verifier_yes")}
    labels: dict[int, list[str]] = defaultdict(list)
    for item_id, value in (Label.objects.filter(item_id__in=list(fields)).order_by("item_id", "created", "id")
                           .values_list("item_id", "label")):
        labels[item_id].append(value)
    return [Row(i, f["task"], f["stage"], f["step"], f["reason"], f["verifier_yes"], tuple(labels[i]))
            for i, f in sorted(fields.items()) if labels[i]]


def summarize(rows: list[Row]) -> dict:
    """Confusion matrix with Wilson intervals over items with a human truth; ties and all-unsure
    items counted apart; Cohen's kappa over items labelled twice (first two labels)."""
    pairs, ties, all_unsure = [], 0, 0
    for row in rows:
        truth = human_truth(row.labels)
        if truth is None:
            if all(label == UNSURE for label in row.labels):
                all_unsure += 1
            else:
                ties += 1
            continue
        pairs.append((row.verifier_yes, truth))
    agreement = [(row.labels[0], row.labels[1]) for row in rows if len(row.labels) >= 2]
    return {
        **Confusion.from_pairs(pairs).as_dict(),
        "items": len(rows),
        "no_truth": {"ties": ties, "all_unsure": all_unsure},
        "kappa": {"value": cohens_kappa(agreement), "n": len(agreement)},
    }


def bucket_size(steps: list[int], buckets: int = 10) -> int:
    if not steps:
        return 1
    span = max(steps) - min(steps) + 1
    return max(1, -(-span // buckets))


def run_metrics(run: Run, filters: Filters = Filters(), bucket: int | None = None) -> dict:
    """Everything the run page plots: overall, per task, per stage, per reason, per step range,
    the unbiased share, the queue's state and the false-accept alarm."""
    rows = labelled_rows(run, filters)
    size = bucket or bucket_size([r.step for r in rows])
    by_task, by_stage, by_reason, by_bucket = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
    for row in rows:
        by_task[row.task].append(row)
        by_stage["none" if row.stage is None else str(row.stage)].append(row)
        by_reason[row.reason].append(row)
        by_bucket[(row.step // size) * size].append(row)
    queue = ReviewItem.objects.filter(run=run)
    return {
        "run": run.pk,
        "filters": filters.as_dict(),
        "overall": summarize(rows),
        "unbiased": summarize([r for r in rows if r.reason in UNBIASED_REASONS]),
        "by_task": {k: summarize(v) for k, v in sorted(by_task.items())},
        "by_stage": {k: summarize(v) for k, v in sorted(by_stage.items())},
        "by_reason": {k: summarize(v) for k, v in sorted(by_reason.items())},
        "bucket": size,
        "buckets": [{"step_min": start, "step_max": start + size - 1, **summarize(v)}
                    for start, v in sorted(by_bucket.items())],
        "queue": {"items": queue.count(), "pending": queue.pending().count(),
                  "labelled": queue.filter(label_count__gt=0).count()},
        "alarm": false_accept_alarm(run),
    }


def false_accept_alarm(run: Run) -> dict:
    """Raised when the lower Wilson bound of the false-accept rate passes the run's threshold.

    Measured on the unbiased share only: the oversampled disagreement cases are exactly where the
    verifier's YES is most often wrong, so counting them would overstate the rate."""
    threshold = audit_config(run).false_accept_alarm
    summary = summarize(labelled_rows(run, Filters(unbiased=True)))
    rate = summary["false_accept_rate"]
    return {
        "threshold": threshold, "value": rate["value"], "low": rate["low"], "high": rate["high"],
        "n": summary["fp"] + summary["tn"], "triggered": rate["low"] is not None and rate["low"] > threshold,
    }


# ====================================================================== export, progress, queue

def export_rows(run: Run) -> Iterator[dict]:
    """One dict per labelled judgment of `run` (for evaluating or training verifiers)."""
    items = (ReviewItem.objects.filter(run=run, label_count__gt=0).select_related("sample")
             .order_by("id"))
    for chunk in _chunks(items.iterator(chunk_size=500), 500):
        labels = defaultdict(list)
        for lab in Label.objects.filter(item__in=[i.pk for i in chunk]).select_related("annotator").order_by("created", "id"):
            labels[lab.item_id].append({"annotator": lab.annotator.username, "label": lab.label, "note": lab.note,
                                        "created": lab.created.isoformat()})
        for item in chunk:
            s, extra = item.sample, item.sample.extra or {}
            given = [entry["label"] for entry in labels[item.pk]]
            yield {
                "run": run.pk, "sample": s.pk, "item": item.pk, "step": item.step, "attempt": s.attempt,
                "task": item.task, "stage": item.stage, "reason": item.reason,
                "question": s.question, "options": extra.get("options"), "reference": s.reference,
                "response": s.response, "extracted_answer": extra.get("extracted_answer"),
                "doc_ids": extra.get("doc_ids"), "verdict": s.verdict, "majority": s.majority, "votes": s.votes,
                "verifier_yes": item.verifier_yes, "rule_score": s.rule_score,
                "labels": labels[item.pk], "human_equivalent": human_truth(given),
            }


def export_jsonl(run: Run) -> Iterator[str]:
    for row in export_rows(run):
        yield json.dumps(row, ensure_ascii=False) + "\n"


def _chunks(iterable, n: int):
    chunk = []
    for x in iterable:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def queue_overview(user, teams) -> list[dict]:
    """Runs of `teams` with items still to label: pending in all, and how many `user` can take."""
    pending = (ReviewItem.objects.for_teams(teams).pending().values("run_id")
               .annotate(pending=Count("id")).order_by())
    counts = {row["run_id"]: row["pending"] for row in pending}
    mine = (ReviewItem.objects.for_teams(teams).pending().exclude(labels__annotator=user).values("run_id")
            .annotate(n=Count("id")).order_by())
    yours = {row["run_id"]: row["n"] for row in mine}
    runs = Run.objects.filter(pk__in=counts).select_related("team").order_by("-created_at", "-id")
    return [{"run": run, "pending": counts[run.pk], "for_you": yours.get(run.pk, 0)} for run in runs]


def annotator_progress(teams) -> list[dict]:
    """Per annotator over `teams`: labels given, items, runs, the last label, and their split."""
    since = timezone.now() - timedelta(days=1)
    rows = (Label.objects.filter(item__team__in=teams).values("annotator_id", "annotator__username")
            .annotate(total=Count("id"), runs=Count("item__run", distinct=True), last=Max("created"),
                      today=Count("id", filter=Q(created__gte=since)),
                      equivalent=Count("id", filter=Q(label="equivalent")),
                      not_equivalent=Count("id", filter=Q(label="not_equivalent")),
                      unsure=Count("id", filter=Q(label="unsure")))
            .order_by("-total", "annotator__username"))
    return [{**row, "username": row.pop("annotator__username")} for row in rows]


def run_progress(teams) -> list[dict]:
    rows = (ReviewItem.objects.for_teams(teams).values("run_id", "run__name")
            .annotate(items=Count("id"), labelled=Count("id", filter=Q(label_count__gt=0)),
                      complete=Count("id", filter=Q(label_count__gte=F("needed_labels"))),
                      double=Count("id", filter=Q(needed_labels=2)))
            .order_by("-run_id"))
    return list(rows)
