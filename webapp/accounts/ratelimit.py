"""Login rate limiting: too many failures for one username from one address -> refuse for a while.

Failures are rows (LoginFailure), so every web process sees the same count. Defaults: 10 failures
in 5 minutes per username + IP (settings LOGIN_FAILURE_LIMIT, LOGIN_FAILURE_WINDOW_SECONDS).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.accounts.models import LoginFailure


def limit() -> int:
    return int(getattr(settings, "LOGIN_FAILURE_LIMIT", 10))


def window() -> int:
    return int(getattr(settings, "LOGIN_FAILURE_WINDOW_SECONDS", 300))


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _recent(username: str, ip: str | None):
    since = timezone.now() - timedelta(seconds=window())
    return LoginFailure.objects.filter(username=username.lower()[:150], ip=ip, at__gte=since)


def is_limited(username: str, ip: str | None) -> bool:
    return _recent(username, ip).count() >= limit()


def record_failure(username: str, ip: str | None) -> None:
    LoginFailure.objects.create(username=(username or "").lower()[:150], ip=ip)
    # Old rows are of no use: drop them now and then (cheap, indexed).
    LoginFailure.objects.filter(at__lt=timezone.now() - timedelta(seconds=window() * 2)).delete()


def clear(username: str, ip: str | None) -> None:
    LoginFailure.objects.filter(username=(username or "").lower()[:150], ip=ip).delete()


def message() -> str:
    minutes = max(1, round(window() / 60))
    return (
        f"Too many failed logins for this account from your address. Wait {minutes} minutes and try again, "
        "or reset your password."
    )
