"""Corpora: uploaded documents, their clusters (document sets), the ingest state, and the
evaluation sets a run can be evaluated on."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from webapp.accounts.models import Team, teams_for


class TeamOwnedQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Objects of the teams `user` is a member of (all for an admin)."""
        return self.filter(team__in=teams_for(user, role="member")) if not user.is_staff else self.all()


def folder_size(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


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
    # Pipeline knobs chosen at upload (cluster size, dedup threshold, minimum length).
    options = models.JSONField(default=dict, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Bytes of the uploaded files under MEDIA_ROOT/corpora/<id>/ (refreshed after upload and ingest).
    disk_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TeamOwnedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "corpora"
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="corpus_name_unique_per_team")]

    def __str__(self) -> str:
        return self.name

    @property
    def folder(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "corpora" / str(self.pk)

    @property
    def upload_folder(self) -> Path:
        return self.folder / "uploads"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)

    def refresh_disk_bytes(self) -> int:
        self.disk_bytes = folder_size(self.folder)
        Corpus.objects.filter(pk=self.pk).update(disk_bytes=self.disk_bytes)
        return self.disk_bytes



class Cluster(models.Model):
    """A document set: the questioner samples its documents from one cluster."""

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="clusters")
    key = models.CharField(max_length=200)
    label = models.CharField(max_length=300, blank=True)
    numeric = models.BooleanField(default=False)
    given = models.BooleanField(default=False, help_text="Named in the uploaded file (else made by k-means).")
    size = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "key"], name="cluster_key_unique")]

    def __str__(self) -> str:
        return self.label or self.key


class Document(models.Model):
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="documents")
    cluster = models.ForeignKey(Cluster, null=True, on_delete=models.SET_NULL, related_name="documents")
    external_id = models.CharField(max_length=200)
    title = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    # This document alone passed the numeric heuristic (the set's flag is Cluster.numeric).
    numeric = models.BooleanField(default=False)
    tokens = models.PositiveIntegerField(default=0)
    source_file = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "external_id"], name="document_id_unique")]


class UploadIssue(models.Model):
    """A per-file problem found at upload or ingest (the good files go on)."""

    class Stage(models.TextChoices):
        UPLOAD = "upload", "Upload"
        INGEST = "ingest", "Ingest"

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="issues")
    filename = models.CharField(max_length=500)
    code = models.CharField(max_length=40)
    message = models.TextField()
    line = models.PositiveIntegerField(null=True, blank=True)
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.UPLOAD)
    created_at = models.DateTimeField(auto_now_add=True)


class EvalSet(models.Model):
    """A public-format evaluation set (LongBench-v2, LongBench QA, DocMath), read into EvalItems
    stored as one JSON-lines file (`items_path`); runs evaluate on it periodically."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        INGESTING = "ingesting", "Reading"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        AUTO = "", "Detect from the file"
        LONGBENCH_V2 = "longbench_v2", "LongBench-v2 (multiple choice, JSON)"
        LONGBENCH_QA = "longbench_qa", "LongBench QA (JSON lines)"
        DOCMATH = "docmath", "DocMath-Eval (JSON)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="eval_sets")
    name = models.CharField(max_length=200)
    format = models.CharField(max_length=20, choices=Format.choices, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    source_file = models.CharField(max_length=300, blank=True)
    items = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)  # items per task and per source, context lengths
    error = models.TextField(blank=True)
    disk_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TeamOwnedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="evalset_name_unique_per_team")]

    def __str__(self) -> str:
        return self.name

    @property
    def folder(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "evalsets" / str(self.pk)

    @property
    def upload_path(self) -> Path:
        return self.folder / "uploads" / self.source_file

    @property
    def items_path(self) -> Path:
        """The EvalItems, one JSON object a line (fields of spell.data.evalsets.EvalItem)."""
        return self.folder / "items.jsonl"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)



@receiver(post_delete, sender=Corpus)
@receiver(post_delete, sender=EvalSet)
def _delete_files(sender, instance, **kwargs):
    """Deleting a corpus or eval set (directly or through its team) deletes its files, once the
    delete is committed (a rolled-back delete keeps them)."""
    folder = instance.folder
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
