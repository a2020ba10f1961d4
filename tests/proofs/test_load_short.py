"""Load, short form (CI): 50 websocket clients on a run page's socket + 20 HTTP requests/s + live
messages through the channel layer, for 10 s, against a real Daphne and the tests' Redis. Zero
errors asserted (no failed connection, no missed live message, only 200s); p50 / p95 reported,
not asserted. The full form is `bench/load.py` (60 s)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys

from tests.support import REPO, child_env


def bench_load():
    spec = importlib.util.spec_from_file_location("bench_load", REPO / "bench" / "load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_it_serves_50_websocket_clients_and_20_requests_a_second_without_errors(transactional_db):
    from tests.e2e.conftest import LiveServer

    load = bench_load()
    run_id, cookie = load._setup()
    server = LiveServer(child_env()).start(timeout=120)
    try:
        before = load.machine_load()
        stats = asyncio.run(load.run_load(server.url, run_id, cookie, duration=10, ws_clients=50, rps=20,
                                          events_per_second=5))
        summary = stats.summary()
        print(f"\nload (short): {json.dumps(summary)}\n{before} before, {load.machine_load()} after")
    finally:
        server.stop()
    assert summary["ws_clients_connected"] == 50
    assert summary["http_requests"] >= 190 and summary["live_messages_received"] == 50 * summary["live_messages_published"]
    assert stats.errors == [], stats.errors[:10]
