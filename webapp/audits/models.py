"""Models of the audits app."""

from django.db import models  # noqa: F401
