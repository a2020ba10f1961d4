"""Load on the live edge: N websocket clients on one run page's socket plus steady HTTP traffic,
against Daphne + Redis, for a fixed time. Reports p50 / p95 latencies and every error.

    .venv/bin/python bench/load.py            # full: 50 websocket clients + 20 HTTP req/s for 60 s
    .venv/bin/python bench/load.py --short    # CI: the same for 10 s

What it does: sets up (on DATABASE_URL / REDIS_URL, or SQLite + the embedded Redis under
SPELL_VAR_DIR, default var/bench-load) a team, a user, a RUNNING run with stored events; starts
Daphne on a free port; logs in (a session cookie); then, at once:
  - `--ws` clients connect to ws/runs/<id>/?after=<seq> (cookie + Origin, as a browser does), and
    read the backfill and then every live message;
  - a publisher sends `--events-per-second` run.events messages to the run's group through the
    channel layer (what workers/relay.py does), each stamped with its send time: the websocket
    latency is receive time - send time, and every client must get every message;
  - HTTP requests at `--rps` (open loop, evenly spaced) over the run page, its events and metrics
    JSON, the runs list and /healthz: latency = time to the full response.
Errors: a websocket that fails to connect or closes early, a missed live message, an HTTP status
other than 200, a timeout. Exit status 1 if there was any.

`run_load(...)` is the reusable part (tests/proofs/test_load_short.py calls it on the test stack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class Stats:
    ws_latency: list[float] = field(default_factory=list)
    http_latency: list[float] = field(default_factory=list)
    http_by_path: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    ws_connected: int = 0
    http_requests: int = 0
    published: int = 0
    received: int = 0

    def percentile(self, values: list[float], q: float) -> float | None:
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    def summary(self) -> dict:
        ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
        return {
            "ws_clients_connected": self.ws_connected,
            "live_messages_published": self.published,
            "live_messages_received": self.received,
            "ws_p50_ms": ms(self.percentile(self.ws_latency, 50)),
            "ws_p95_ms": ms(self.percentile(self.ws_latency, 95)),
            "http_requests": self.http_requests,
            "http_p50_ms": ms(self.percentile(self.http_latency, 50)),
            "http_p95_ms": ms(self.percentile(self.http_latency, 95)),
            "http_p50_ms_by_path": {path.split("?")[0]: ms(self.percentile(values, 50))
                                    for path, values in sorted(self.http_by_path.items())},
            "errors": len(self.errors),
            "first_errors": self.errors[:10],
        }


def _http_get(url: str, cookie: str, timeout: float) -> tuple[int, float]:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.perf_counter() - start


async def _http_load(base_url: str, paths: list[str], cookie: str, rps: float, duration: float, stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    tasks = []

    async def one(path: str) -> None:
        try:
            status, elapsed = await loop.run_in_executor(None, _http_get, base_url + path, cookie, 30)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            stats.errors.append(f"HTTP {path}: {type(exc).__name__}: {exc}")
            return
        stats.http_requests += 1
        if status != 200:
            stats.errors.append(f"HTTP {path}: status {status}")
        else:
            stats.http_latency.append(elapsed)
            stats.http_by_path.setdefault(path, []).append(elapsed)

    start = time.perf_counter()
    i = 0
    while (due := start + i / rps) < start + duration:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(paths[i % len(paths)])))
        i += 1
    await asyncio.gather(*tasks)


async def _ws_client(url: str, origin: str, cookie: str, stats: Stats, stop: asyncio.Event, got: set, ready) -> None:
    import websockets

    try:
        async with websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie}, open_timeout=30,
                                      max_size=16 << 20) as ws:
            stats.ws_connected += 1
            ready()
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                now = time.time()
                message = json.loads(raw)
                if message.get("kind") != "events" or message.get("backfill"):
                    continue
                for event in message["events"]:
                    sent = (event.get("payload") or {}).get("bench_sent_at")
                    if sent is not None:
                        stats.ws_latency.append(now - sent)
                        stats.received += 1
                        got.add(event["seq"])
    except Exception as exc:  # noqa: BLE001
        stats.errors.append(f"websocket: {type(exc).__name__}: {exc}")
        ready()


async def _publish(run_id: int, rate: float, duration: float, first_seq: int, stats: Stats) -> list[int]:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    seqs = []
    start = time.perf_counter()
    i = 0
    while (due := start + i / rate) < start + duration:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        seq = first_seq + i
        event = {"seq": seq, "attempt": 1, "step": 0, "type": "log", "time": time.time(), "superseded": False,
                 "payload": {"message": "bench", "bench_sent_at": time.time()}}
        await layer.group_send(f"run-{run_id}", {"type": "run.events", "run": run_id, "events": [event]})
        seqs.append(seq)
        stats.published += 1
        i += 1
    return seqs


async def run_load(base_url: str, run_id: int, cookie: str, *, duration: float = 60, ws_clients: int = 50,
                   rps: float = 20, events_per_second: float = 5, after: int = -1) -> Stats:
    """The load itself, against a running server; `cookie` is `sessionid=...` of a team member."""
    stats = Stats()
    ws_url = base_url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws/runs/{run_id}/?after={after}"
    stop = asyncio.Event()
    gots = [set() for _ in range(ws_clients)]
    connected = 0
    all_ready = asyncio.Event()

    def ready():
        nonlocal connected
        connected += 1
        if connected >= ws_clients:
            all_ready.set()

    clients = [asyncio.create_task(_ws_client(ws_url, base_url, cookie, stats, stop, gots[i], ready))
               for i in range(ws_clients)]
    await asyncio.wait_for(all_ready.wait(), timeout=120)
    await asyncio.sleep(0.5)  # the last consumers have joined the group
    paths = [f"/runs/{run_id}/", f"/runs/{run_id}/events?after={max(after, 0)}", f"/runs/{run_id}/metrics.json",
             "/runs/", "/healthz"]
    seqs, _ = await asyncio.gather(
        _publish(run_id, events_per_second, duration, 10**9, stats),
        _http_load(base_url, paths, cookie, rps, duration, stats),
    )
    await asyncio.sleep(2)  # the last live messages arrive
    stop.set()
    await asyncio.gather(*clients)
    expected = set(seqs)
    for i, got in enumerate(gots):
        missing = expected - got
        if missing and i < stats.ws_connected:
            stats.errors.append(f"websocket client {i}: {len(missing)} of {len(expected)} live messages missed")
    return stats


def machine_load() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


# --- the standalone bench: its own database rows, its own Daphne --------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _setup() -> tuple[int, str]:
    """Migrate, then a team, a member and a RUNNING run with 200 stored events; (run id, cookie)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from spell.config import preset
    from webapp.accounts.models import Membership, Team
    from webapp.runs.models import Run, RunEvent

    call_command("migrate", verbosity=0)
    team, _ = Team.objects.get_or_create(slug="bench-load", defaults={"name": "Bench load"})
    user = get_user_model().objects.filter(username="bench-load").first()
    if user is None:
        user = get_user_model().objects.create_user("bench-load", password=os.urandom(12).hex())
    Membership.objects.get_or_create(user=user, team=team)
    run = Run.objects.create(team=team, name="bench load", config=preset("cpu-demo").to_dict(), preset="cpu-demo",
                             state=Run.State.RUNNING, attempt=1, last_seq=199, created_by=user)
    RunEvent.objects.bulk_create(RunEvent(run=run, seq=i, src_seq=i, attempt=1, step=i // 10, type="metrics",
                                          time=time.time(), payload={"reward": {"responder": i / 200}})
                                 for i in range(200))
    client = Client()
    client.force_login(user)
    return run.pk, f"sessionid={client.cookies['sessionid'].value}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="10 s instead of 60 s (CI)")
    parser.add_argument("--duration", type=float, help="seconds of load (default 60, or 10 with --short)")
    parser.add_argument("--ws", type=int, default=50, help="websocket clients")
    parser.add_argument("--rps", type=float, default=20, help="HTTP requests per second")
    parser.add_argument("--events-per-second", type=float, default=5, help="live messages sent to the run's group")
    args = parser.parse_args(argv)
    duration = args.duration or (10 if args.short else 60)

    os.environ.setdefault("SPELL_VAR_DIR", str(REPO / "var" / "bench-load"))
    Path(os.environ["SPELL_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.conf import settings

    redis = None
    if settings.EMBEDDED_REDIS:
        from webapp.embedded_redis import ensure_running

        redis = ensure_running(settings.REDIS_URL)
    run_id, cookie = _setup()
    port = _free_port()
    log_path = Path(settings.VAR_DIR) / f"bench-daphne-{port}.log"
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1"}
    if "DATABASE_URL" not in os.environ:
        env["DATABASE_URL"] = f"sqlite:///{settings.DATABASES['default']['NAME']}"
    daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
                              cwd=REPO, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or daphne.poll() is not None:
                    print(f"Daphne did not start; see {log_path}", file=sys.stderr)
                    return 1
                time.sleep(0.3)
        print(f"load: {args.ws} websocket clients + {args.rps:g} HTTP req/s + {args.events_per_second:g} live "
              f"messages/s for {duration:g} s against Daphne at {base} ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
              f"{'embedded ' if settings.EMBEDDED_REDIS else ''}Redis)")
        print(machine_load() + " before")
        stats = asyncio.run(run_load(base, run_id, cookie, duration=duration, ws_clients=args.ws, rps=args.rps,
                                     events_per_second=args.events_per_second))
        print(machine_load() + " after")
        print(json.dumps(stats.summary(), indent=2))
        return 1 if stats.errors else 0
    finally:
        daphne.terminate()
        daphne.wait(timeout=20)
        from webapp.runs.models import Run

        Run.objects.filter(pk=run_id).delete()
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    sys.exit(main())
