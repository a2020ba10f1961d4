"""The authentication backend: Django's ModelBackend behind the login rate limiter, so every path
that authenticates (our login page, /admin/login/, anything calling `authenticate()`) is limited
alike (webapp/accounts/ratelimit.py)."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from webapp.accounts import ratelimit


class RateLimitedBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and username:
            ip = ratelimit.client_ip(request)
            if ratelimit.is_limited(username, ip):
                # Stops authenticate() before any backend checks the password; it then sends
                # user_login_failed (not counted while limited).
                raise PermissionDenied(ratelimit.message())
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and request is not None and username:
            ratelimit.clear(username, ratelimit.client_ip(request))
        return user
