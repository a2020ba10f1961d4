"""Corpora: uploaded documents, their clusters (document sets) and the ingest state."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.accounts.models import Team, teams_for


class CorpusQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(team__in=teams_for(user, role="member")) if not user.is_staff else self.all()


class Corpus(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        INGESTING = "ingesting", "Ingesting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="corpora")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Ingest progress for the progress bar: stage name and done/total of that stage.
    progress_stage = models.CharField(max_length=40, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CorpusQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "corpora"
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="corpus_name_unique_per_team")]

    def __str__(self) -> str:
        return self.name


class Cluster(models.Model):
    """A document set: the questioner samples its documents from one cluster."""

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="clusters")
    key = models.CharField(max_length=200)
    label = models.CharField(max_length=300, blank=True)
    numeric = models.BooleanField(default=False)
    size = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "key"], name="cluster_key_unique")]


class Document(models.Model):
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="documents")
    cluster = models.ForeignKey(Cluster, null=True, on_delete=models.SET_NULL, related_name="documents")
    external_id = models.CharField(max_length=200)
    title = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    numeric = models.BooleanField(default=False)
    tokens = models.PositiveIntegerField(default=0)
    source_file = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "external_id"], name="document_id_unique")]


class UploadIssue(models.Model):
    """A per-file problem found at upload or ingest (the good files go on)."""

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="issues")
    filename = models.CharField(max_length=500)
    code = models.CharField(max_length=40)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
