"""Models of the fleet app."""

from django.db import models  # noqa: F401
