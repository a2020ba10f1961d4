"""/healthz: is the database reachable, is Redis reachable, is any worker alive. Anyone (a load
balancer, the container healthcheck) gets the status alone; admins also get the details (driver
errors, worker names), which say more about the deployment than strangers should know."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not reachable"; say which
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_redis() -> dict:
    import redis

    started = time.monotonic()
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_workers(timeout: float = 1.0) -> dict:
    from webapp.taskqueue import app

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:  # broker down: reported by check_redis as well
        return {"ok": False, "count": 0, "error": f"{type(exc).__name__}: {exc}"[:300]}
    names = sorted(name for reply in replies for name in reply)
    return {"ok": bool(names), "count": len(names), "names": names}


def healthz(request):
    result = {"database": check_database(), "redis": check_redis()}
    result["workers"] = check_workers() if result["redis"]["ok"] else {"ok": False, "count": 0, "error": "redis unreachable"}
    ok = result["database"]["ok"] and result["redis"]["ok"]
    result["status"] = "ok" if ok and result["workers"]["ok"] else ("degraded" if ok else "down")
    user = getattr(request, "user", None)
    if not (user is not None and user.is_authenticated and user.is_staff):
        result = {"status": result["status"]}
    return JsonResponse(result, status=200 if ok else 503)
