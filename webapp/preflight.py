"""Checks run before the product starts: each failure is one line that says what to fix.

Used by `make run` (webapp.launcher), by the worker at start-up and by `manage.py preflight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PreflightError(SystemExit):
    """Raised with the one line to print; exits with status 1."""

    def __init__(self, message: str):
        super().__init__(1)
        self.message = " ".join(message.split())  # always one line

    def __str__(self) -> str:
        return self.message


@dataclass
class Settings:
    database: dict
    redis_url: str
    embedded_redis: bool


def load_settings():
    """Import Django settings, turning configuration errors into one line."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
        from django.conf import settings

        settings.DATABASES  # noqa: B018 - force evaluation
    except ImproperlyConfigured as exc:
        raise PreflightError(f"configuration error: {exc}") from None
    except (KeyError, ValueError) as exc:  # django-environ on an unknown DATABASE_URL scheme
        raise PreflightError(
            f"configuration error: cannot parse DATABASE_URL ({exc}); use postgres://USER@HOST:PORT/DB "
            "or sqlite:////absolute/path.db"
        ) from None
    return settings


def check_database() -> None:
    from django.db import connection
    from django.db.utils import OperationalError

    db = connection.settings_dict
    where = db.get("NAME") if connection.vendor == "sqlite" else f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db.get('NAME')}"
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise PreflightError(
            f"database unreachable at {where} ({reason}): check DATABASE_URL, or start PostgreSQL"
        ) from None
    except Exception as exc:  # driver missing, bad options: still one line
        raise PreflightError(f"database error at {where}: {type(exc).__name__}: {exc}") from None


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    except ValueError as exc:
        raise PreflightError(f"bad REDIS_URL {url!r}: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        raise PreflightError(f"redis unreachable at {url} ({exc}): check REDIS_URL, or start Redis") from None


def check_model_folder(path: Path) -> None:
    path = Path(path)
    if not path.is_dir():
        raise PreflightError(f"model folder missing: {path} (run `make run` to provision it, or fix MODEL_ROOT)")
    if not (path / "config.json").exists():
        raise PreflightError(f"model folder {path} has no config.json: it is not a Hugging Face model folder")
