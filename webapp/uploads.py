"""Limits on what one request may upload, applied before anything is streamed to disk.

- A request whose declared size (Content-Length) is over UPLOAD_MAX_REQUEST_BYTES is answered 413
  by `RequestSizeLimitMiddleware` before Django reads its body (the proxy in front has the same cap).
- DATA_UPLOAD_MAX_NUMBER_FILES is UPLOAD_MAX_FILES + 1: one file over the limit reaches the upload
  form, which says so beside the field; more are refused by Django while parsing (TooManyFilesSent),
  and the styled 400 page (webapp.views.bad_request) says why, with the limit.
Per-file size and type checks stay with the upload forms and corpora/services.py.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render


def size_text(n: int) -> str:
    """1.5 GiB, 200 MiB, 49 KiB: the unit that keeps the number readable."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:,.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def too_large_message(size: int) -> str:
    return (f"This request is {size_text(size)}; one upload may send at most {size_text(settings.UPLOAD_MAX_REQUEST_BYTES)} "
            f"in all (and {size_text(settings.UPLOAD_MAX_FILE_BYTES)} per file). Split the files into several uploads.")


def wants_json(request) -> bool:
    return "/api/" in request.path or "application/json" in request.META.get("HTTP_ACCEPT", "")


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        if size > settings.UPLOAD_MAX_REQUEST_BYTES:
            message = too_large_message(size)
            if wants_json(request):
                return JsonResponse({"error": message}, status=413)
            return render(request, "400.html", {"reason": message, "status": 413}, status=413)
        return self.get_response(request)
