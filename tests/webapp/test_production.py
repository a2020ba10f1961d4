"""Production as shipped (PRODUCTION=1, the compose file's settings), in processes of their own
(settings are read once per process): requests through the proxy's headers are https; the same
headers from anyone but a trusted proxy are ignored (the https redirect answers); a host outside
ALLOWED_HOSTS is refused; and the web container's healthcheck passes against Daphne."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from tests.support import REPO, child_env

PROXY = "10.9.9.9"
HOST = "studio.example.com"

CLIENT_SCRIPT = r"""
import json, django
django.setup()
from django.test import Client

def get(remote, host="studio.example.com", **headers):
    r = Client().get("/healthz", REMOTE_ADDR=remote, HTTP_HOST=host, **headers)
    return {"status": r.status_code, "location": r.get("Location", ""), "hsts": r.get("Strict-Transport-Security", "")}

print(json.dumps({
    "via_proxy": get("10.9.9.9", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR="203.0.113.4"),
    "plain_via_proxy": get("10.9.9.9"),
    "forged": get("192.0.2.5", HTTP_X_FORWARDED_PROTO="https"),
    "other_host": get("10.9.9.9", host="evil.example.net", HTTP_X_FORWARDED_PROTO="https"),
}))
"""


def production_env(**extra) -> dict:
    return child_env(PRODUCTION="1", SECRET_KEY="x" * 64, ALLOWED_HOSTS=HOST, TRUSTED_PROXIES=f"{PROXY},127.0.0.1",
                     DEBUG="0", SPELL_TESTING="0", **extra)


@pytest.mark.django_db(transaction=True)
def test_the_production_settings_answer_through_the_proxy_headers_only():
    done = subprocess.run([sys.executable, "-c", CLIENT_SCRIPT], cwd=REPO, env=production_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["via_proxy"]["status"] == 200 and seen["via_proxy"]["hsts"].startswith("max-age=")
    assert seen["plain_via_proxy"] == {"status": 301, "location": f"https://{HOST}/healthz", "hsts": ""}
    assert seen["forged"]["status"] == 301  # X-Forwarded-Proto from a stranger is not believed
    assert seen["other_host"]["status"] == 400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_the_web_containers_healthcheck_passes_against_daphne_in_production():
    port = free_port()
    env = production_env(PORT=str(port))
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                               "webapp.asgi:application"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline, check = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            check = subprocess.run([sys.executable, "docker/healthcheck.py"], cwd=REPO, env=env, capture_output=True,
                                   text=True, timeout=30)
            if check.returncode == 0:
                break
            time.sleep(0.5)
        assert check is not None and check.returncode == 0, (check and check.stderr, server.poll())
        # The same script with a host the app does not serve fails: the check is real.
        wrong = subprocess.run([sys.executable, "docker/healthcheck.py"], cwd=REPO, env={**env, "ALLOWED_HOSTS": "other.example"},
                               capture_output=True, text=True, timeout=30)
        assert wrong.returncode == 1
    finally:
        server.terminate()
        server.wait(timeout=20)
