"""Forwarded headers are believed only from the reverse proxy.

Behind the shipped proxy (docker/Caddyfile) the web server sees every request from the proxy, which
reports the client's scheme and address in X-Forwarded-Proto / -For / -Host. Anyone who reaches the
web server directly could send those headers too, claim https (SECURE_PROXY_SSL_HEADER) or any
address (the login limiter), so this middleware, first in the chain, drops them unless the request
comes from an address in TRUSTED_PROXIES."""

from __future__ import annotations

from django.conf import settings

FORWARDED = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED")


class TrustedProxyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("REMOTE_ADDR") not in set(getattr(settings, "TRUSTED_PROXIES", [])):
            for name in FORWARDED:
                request.META.pop(name, None)
        return self.get_response(request)
