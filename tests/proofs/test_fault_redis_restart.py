"""Fault: Redis (Celery broker + channel layer) restarts mid-run.

The machine's Redis is shared, so this test starts its own redis-server on a free port (no
persistence, as in ENVIRONMENT.md: a restart loses every key) and points the worker at it; the
run's task reaches the worker through that Redis. A listener in the test joins the run's group on
the same Redis, like a page's consumer, and joins again when Redis is back (a page reconnects).
Expected: the training process goes on, the worker reconnects to the broker (it answers a ping
through the restarted Redis), live events flow again after the restart, the run succeeds and
nothing is lost in the database; a run page open in Chromium (Daphne on the same Redis) ends
with every event, once and in order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from tests.proofs.conftest import (
    assert_page_has_every_event,
    assert_checkpoint_loads, assert_nothing_lost, launch_tiny, run_row, state_of, wait_for,
)
from tests.proofs.private_redis import PrivateBrokerWorker, private_app
from tests.support import child_env

OUTAGE_SECONDS = 6


class GroupListener(threading.Thread):
    """Joins group `run-<id>` on a channel layer and collects the seqs of the events sent to it;
    when Redis goes away it joins again (a fresh channel) as soon as Redis answers."""

    def __init__(self, url: str, run_id: int):
        super().__init__(daemon=True)
        self.url, self.group = url, f"run-{run_id}"
        self.seqs: list[int] = []
        self.joins = 0
        self.errors = 0

    def run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        from channels_redis.core import RedisChannelLayer

        while True:
            layer = RedisChannelLayer(hosts=[self.url])
            try:
                channel = await layer.new_channel()
                await layer.group_add(self.group, channel)
                self.joins += 1
                while True:
                    message = await layer.receive(channel)
                    if message.get("type") == "run.events":
                        self.seqs.extend(e["seq"] for e in message["events"])
            except Exception:  # Redis went away: wait and join again
                self.errors += 1
                await asyncio.sleep(0.5)
            finally:
                try:
                    await layer.close_pools()
                except Exception:
                    pass


@pytest.mark.e2e
def test_it_goes_on_streaming_after_redis_restarts(world, private_redis):
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer, log_in
    from webapp.runs import services
    from webapp.runs.models import Run, RunEvent
    from workers.run_tasks import run_spell

    env = child_env(RUNS_ROOT=world["runs_root"], WORKER_HEARTBEAT_SECONDS=1, REDIS_URL=private_redis.url)
    worker = PrivateBrokerWorker(private_redis.url, queues="cpu", name="redisfault", env=env).start()
    server = LiveServer(env).start(timeout=120)  # Daphne's channel layer is the private Redis too
    try:
        run = launch_tiny(world, 400)  # also queued on the tests' own broker, where nobody consumes `cpu`
        listener = GroupListener(private_redis.url, run.pk)
        listener.start()
        wait_for(lambda: listener.joins, "the listener to join the run's group")
        private_app(private_redis.url).send_task(run_spell.name, args=[run.pk], queue="cpu")
        wait_for(lambda: RunEvent.objects.filter(run_id=run.pk, type="checkpoint").exists(), "a first checkpoint",
                 logs=[worker])
        wait_for(lambda: listener.seqs, "live events before the restart")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(60_000)
            log_in(page, server.url, "owner", "pw-for-proofs-1")
            page.goto(f"{server.url}/runs/{run.pk}/")
            page.wait_for_function("window.SpellRun && SpellRun.lastSeq() >= 0")
            page.wait_for_timeout(500)
            start = page.evaluate("window.__seqs = []; SpellRun.subscribe(e => window.__seqs.push(e.seq)); SpellRun.lastSeq()")

            private_redis.stop()
            time.sleep(OUTAGE_SECONDS)
            stored_at_restart = run_row(run).last_seq
            private_redis.start()

            wait_for(lambda: listener.joins >= 2, "the listener to join again")
            wait_for(worker.ping, "the worker to answer through the restarted Redis", timeout=120, logs=[worker])
            wait_for(lambda: [s for s in listener.seqs if s > stored_at_restart], "live events after the restart",
                     logs=[worker])
            # The open page follows too (its socket may have been dropped with Redis: it reconnects, backfills).
            target = run_row(run).last_seq
            page.wait_for_function(f"SpellRun.lastSeq() >= {target}", timeout=120_000)
            assert state_of(run) == Run.State.RUNNING
            seen, last = page.evaluate("[window.__seqs, SpellRun.lastSeq()]")
            assert_page_has_every_event(run, seen, start, last)
            browser.close()

        services.cancel(run_row(run))
        wait_for(lambda: state_of(run) in Run.TERMINAL, "the run to stop", logs=[worker])
        row = run_row(run)
        assert row.state == Run.State.CANCELLED and row.attempt == 1, row.error
        rows = assert_nothing_lost(run)
        after = [s for s in listener.seqs if s > stored_at_restart]
        assert all(r[3] == "heartbeat" for r in rows if r[0] > after[-1])  # the listener got the last live event
        assert_checkpoint_loads(Path(row.run_dir))
    finally:
        server.stop()
        worker.stop()
