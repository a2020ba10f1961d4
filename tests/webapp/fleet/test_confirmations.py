"""Destructive fleet actions ask first (data-confirm, read by studio.js): what each will cost."""

import html as htmllib
import re

from webapp.fleet import services
from webapp.runs.models import Run


def confirms(page: str) -> list[str]:
    return [htmllib.unescape(m) for m in re.findall(r'data-confirm="([^"]*)"', page)]


def test_drain_asks_and_says_what_happens(admin_client):
    services.heartbeat("gpu1@node", host="node", queues=["gpu.8"], version="v1", pid=7)

    page = admin_client.get("/fleet/").content.decode()

    drain = [c for c in confirms(page) if c.startswith("Drain ")]
    assert drain == ["Drain gpu1@node? It takes no new run until you enable it again; runs queued on gpu.8 wait for another worker."]
    assert any(c.startswith("Stop gpu1@node consuming gpu.8?") for c in confirms(page))


def test_drain_names_the_run_it_finishes_and_cancel_asks_too(admin_client, people):
    run = Run.objects.create(team=people.team, name="big one", state=Run.State.RUNNING, worker_hostname="gpu1@node",
                             config={})
    services.heartbeat("gpu1@node", host="node", queues=["gpu.8"], version="v1", pid=7)

    page = admin_client.get("/fleet/").content.decode()

    texts = confirms(page)
    assert any(c.startswith(f"Drain gpu1@node? It finishes run #{run.pk}, then takes no new run") for c in texts)
    assert any(c.startswith(f"Cancel run #{run.pk} “big one”? Training stops now and the run cannot be resumed") for c in texts)
