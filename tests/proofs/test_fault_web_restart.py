"""Fault: the web server (Daphne) restarts while a run streams to an open run page.

Headless Chromium shows the run page of a real tiny-model run; Daphne is stopped while the run
goes on writing events, then started again on the same port. Expected: the page's websocket
reconnects by itself, asks for everything after the last seq it has and applies it; the page ends
up with every event, each once and in order (run.js hands each applied event to subscribers;
heartbeats are stored but never sent live, so the page only sees those that come in a backfill).
"""

from __future__ import annotations

import time

import pytest

from tests.proofs.conftest import (
    assert_nothing_lost, assert_page_has_every_event, launch_tiny, run_row, start_worker, state_of, wait_for,
)
from tests.support import child_env

pytestmark = pytest.mark.e2e

DOWN_SECONDS = 6


def test_the_run_page_reconnects_and_backfills_after_the_web_server_restarts(world):
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer, log_in
    from webapp.runs import services
    from webapp.runs.models import Run

    worker = start_worker(world, "webfault")
    server = LiveServer(child_env(RUNS_ROOT=world["runs_root"])).start(timeout=120)
    try:
        run = launch_tiny(world, 400)  # long enough to still be running after the restart (cancelled below)
        wait_for(lambda: run_row(run).last_seq >= 3, "the first events", logs=[worker])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(60_000)
            sockets = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            log_in(page, server.url, "owner", "pw-for-proofs-1")
            page.goto(f"{server.url}/runs/{run.pk}/")
            page.wait_for_function("window.SpellRun && SpellRun.lastSeq() >= 3")
            page.wait_for_timeout(500)  # the socket is open (its backfill applied)
            start = page.evaluate("window.__seqs = []; SpellRun.subscribe(e => window.__seqs.push(e.seq)); SpellRun.lastSeq()")

            server.stop()
            before = run_row(run).last_seq
            time.sleep(DOWN_SECONDS)
            wait_for(lambda: run_row(run).last_seq > before, "events stored while the web server is down", logs=[worker])
            server.start(timeout=120)

            target = run_row(run).last_seq
            page.wait_for_function(f"SpellRun.lastSeq() >= {target}", timeout=120_000)
            assert state_of(run) == Run.State.RUNNING  # no state change (which reloads the page) helped
            seen, last = page.evaluate("[window.__seqs, SpellRun.lastSeq()]")
            assert_page_has_every_event(run, seen, start, last)
            assert len(sockets) >= 2, sockets  # the page reconnected by itself
            assert page.locator("#run-step").inner_text().strip() != ""
            browser.close()

        services.cancel(run_row(run))
        wait_for(lambda: state_of(run) in Run.TERMINAL, "the run to stop", logs=[worker])
        assert_nothing_lost(run)
    finally:
        server.stop()
        worker.stop()
