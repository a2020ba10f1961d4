"""Models of the runs app: registered models, runs and what their training processes report."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelEntry(models.Model):
    """A model admins registered; runs may only use these (never an arbitrary path from a form)."""

    name = models.CharField(max_length=200, unique=True)
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
