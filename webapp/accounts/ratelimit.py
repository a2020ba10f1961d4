"""Login rate limiting: too many failures for one username from one address -> refuse for a while.

One limiter for every login path: the authentication backend (webapp/accounts/backends.py) refuses a
limited username + address before any password is checked, and Django's `user_login_failed` signal
records each failure, so our login page, /admin/login/ and anything else that calls `authenticate()`
share it. The key is username + the client's address, the address taken from X-Forwarded-For only
when the request comes from a proxy in TRUSTED_PROXIES (otherwise anyone could name any address, and
behind a proxy every client would share the proxy's address: one of them could lock a user out for
all). Failures are rows (LoginFailure), so every web process sees the same count. Defaults: 10
failures in 5 minutes per username + address (settings LOGIN_FAILURE_LIMIT, LOGIN_FAILURE_WINDOW_SECONDS).

Password-reset mails are throttled the same way (PASSWORD_RESET_LIMIT per address and per account
in PASSWORD_RESET_WINDOW_SECONDS), under the key `reset:<email>`.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.accounts.models import LoginFailure


def limit() -> int:
    return int(getattr(settings, "LOGIN_FAILURE_LIMIT", 10))


def window() -> int:
    return int(getattr(settings, "LOGIN_FAILURE_WINDOW_SECONDS", 300))


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """REMOTE_ADDR; behind a trusted proxy, the last address of X-Forwarded-For that is not one of
    the trusted proxies (each proxy appends the address it received the request from)."""
    remote = _ip(request.META.get("REMOTE_ADDR") or "")
    trusted = {t for t in (_ip(x) for x in getattr(settings, "TRUSTED_PROXIES", [])) if t}
    if remote is None or remote not in trusted:
        return remote
    for hop in reversed((request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
        address = _ip(hop)
        if address is None:
            return remote  # a forged or broken header: fall back to the proxy itself
        if address not in trusted:
            return address
    return remote


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


# --- every login path: the backend refuses, the signal counts ---------------------------------------
def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """`user_login_failed`: count the failure (not while limited: the window does not slide)."""
    username = (credentials or {}).get("username") or ""
    if request is None or not username:
        return
    ip = client_ip(request)
    if not is_limited(username, ip):
        record_failure(username, ip)


# --- password-reset mails -----------------------------------------------------------------------------
def reset_limit() -> int:
    return int(getattr(settings, "PASSWORD_RESET_LIMIT", 3))


def reset_window() -> int:
    return int(getattr(settings, "PASSWORD_RESET_WINDOW_SECONDS", 3600))


def reset_allowed(email: str, ip: str | None) -> bool:
    """True (and counted) when another reset mail may go to `email` from `ip`: at most
    PASSWORD_RESET_LIMIT per account and per address in the window."""
    since = timezone.now() - timedelta(seconds=reset_window())
    key = f"reset:{(email or '').lower()}"[:150]
    recent = LoginFailure.objects.filter(username__startswith="reset:", at__gte=since)
    if recent.filter(username=key).count() >= reset_limit() or (ip and recent.filter(ip=ip).count() >= reset_limit()):
        return False
    LoginFailure.objects.create(username=key, ip=ip)
    return True
