"""Models of the audits app: the review queue, people's labels and the append-only review log.

A ReviewItem is one verifier judgment (a runs.Sample) sampled for people to check; it is reserved
to one annotator at a time (a conditional UPDATE, services.reserve_next) and needs one label, or
two for the share used to measure agreement between annotators. Labels are what people said;
ReviewLog records every change to a label and is never updated or deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.accounts.models import Team
from webapp.audits.metrics import EQUIVALENT, NOT_EQUIVALENT, UNSURE
from webapp.runs.models import Run, Sample


class ReviewItemQuerySet(models.QuerySet):
    def for_teams(self, teams):
        return self.filter(team__in=teams)

    def pending(self):
        """Items that still need a label."""
        return self.filter(label_count__lt=models.F("needed_labels"))


class ReviewItem(models.Model):
    class Reason(models.TextChoices):
        RANDOM = "random", "Random share"
        DISAGREEMENT = "disagreement", "Verifier majority differs from the rule score"
        SPLIT = "split_votes", "Verifier votes split"
        FIRST = "stratum", "First of its task and stage"

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, related_name="review_item")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="review_items")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="review_items")
    task = models.CharField(max_length=40, blank=True)
    stage = models.IntegerField(null=True, blank=True, help_text="Curriculum stage of the sample (None: not reported).")
    step = models.IntegerField(default=0)
    verifier_yes = models.BooleanField(help_text="The verifier's majority said the answer matches the reference.")
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.RANDOM)
    priority = models.SmallIntegerField(default=0, help_text="Higher is served first.")
    needed_labels = models.PositiveSmallIntegerField(default=1, help_text="1, or 2 for agreement between annotators.")
    label_count = models.PositiveSmallIntegerField(default=0)
    reserved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    reserved_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReviewItemQuerySet.as_manager()

    class Meta:
        ordering = ["run", "id"]
        indexes = [
            models.Index(fields=["run", "label_count", "priority", "id"], name="review_item_queue"),
            models.Index(fields=["run", "task", "stage"], name="review_item_stratum"),
            models.Index(fields=["team", "label_count"], name="review_item_team"),
        ]

    def __str__(self) -> str:
        return f"review item {self.pk} (run {self.run_id}, step {self.step}, {self.task})"

    @property
    def is_complete(self) -> bool:
        return self.label_count >= self.needed_labels


class Label(models.Model):
    class Value(models.TextChoices):
        EQUIVALENT = EQUIVALENT, "Equivalent"
        NOT_EQUIVALENT = NOT_EQUIVALENT, "Not equivalent"
        UNSURE = UNSURE, "Unsure"

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="labels")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_labels")
    label = models.CharField(max_length=20, choices=Value.choices)
    note = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item", "created", "id"]
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="one_label_per_annotator")]
        indexes = [models.Index(fields=["annotator", "created"], name="label_annotator_created")]

    def __str__(self) -> str:
        return f"{self.annotator} on item {self.item_id}: {self.label}"

    def as_dict(self) -> dict:
        return {"label": self.label, "note": self.note}


class AppendOnlyError(Exception):
    pass


class ReviewLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("The review log is append-only.")

    def delete(self):
        raise AppendOnlyError("The review log is append-only.")


class ReviewLog(models.Model):
    """Who did what to which item, with the value before and after, and when. Append-only: rows are
    only ever inserted. No foreign keys, so deleting a run, an item or a user changes nothing here."""

    actor_id = models.IntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40)
    item_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    team_id = models.BigIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = ReviewLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} item {self.item_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update"):
            raise AppendOnlyError("The review log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("The review log is append-only.")

    @classmethod
    def record(cls, actor, action: str, item: ReviewItem | None, before, after) -> "ReviewLog":
        return cls.objects.create(
            actor_id=getattr(actor, "pk", None), actor_name=getattr(actor, "username", "") or "",
            action=action, item_id=item.pk if item else None, run_id=item.run_id if item else None,
            team_id=item.team_id if item else None, before=before, after=after,
        )
