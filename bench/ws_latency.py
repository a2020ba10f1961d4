"""Event-to-browser latency of the live dashboard: real Daphne, real Redis, real websocket clients.

    .venv/bin/python bench/ws_latency.py                     # 20 clients, 50 events/s, 30 s
    .venv/bin/python bench/ws_latency.py --short             # CI: 5 clients, 20 events/s, 5 s
    REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python bench/ws_latency.py --clients 20 --rate 50

It starts Daphne on webapp.asgi (the embedded Redis when REDIS_URL is unset, else that Redis), makes
a user and a run in the configured database, opens N websocket clients on ws/runs/<id>/ with the
user's session cookie (as N open run pages), and starts a publisher process that sends events at R
per second through the relay's own send path (EventRelay._send -> channel layer group_send, one
event per message, as a relay polling every event would): 20% metrics events of about 1 KB, 80%
sample events of 1-8 KB. Each event carries the publish time; every client notes the receive time
after parsing, and the bench prints p50 / p95 / p99 / max of publish -> receive over every
(client, event), plus events lost. Everything runs on this machine, so the clocks agree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

BENCH_KEY = "bench_t"


def _django():
    import django

    django.setup()


def metrics_payload(rng: random.Random, step: int) -> dict:
    """About 1 KB, shaped like spell's metrics event."""
    return {"reward": {k: rng.random() for k in ("questioner", "responder", "verifier", "rule")},
            "pass_rate": {k: rng.random() for k in ("responder", "rule", "grounding")},
            "responder": {"keep_ratio": rng.random(), "truncated_rate": rng.random(), "response_tokens": 300.0},
            "verifier": {"yes_rate": rng.random(), "agreement_with_rule": rng.random()},
            "train": {k: rng.random() for k in ("loss", "pg_loss", "kl", "entropy", "grad_norm", "clip_fraction")},
            "time": {k: rng.random() * 10 for k in ("generation", "logprob", "update", "weight_sync", "total")},
            "throughput": {"generation_tokens_per_s": 5000.0, "trained_tokens_per_s": 9000.0},
            "curriculum": {"stage": 0, "max_context": 8000, "rolling_accuracy": rng.random()},
            "context_tokens": {"mean": 4000.0, "max": 8000}, "memory": {"depth_mean": 1.0, "depth_max": 2}}


def sample_payload(rng: random.Random, size: int) -> dict:
    """A triple padded to about `size` bytes of JSON (long responses and verifier outputs)."""
    base = {"task": "doc_mc", "question": "Which figure did the report give for the third quarter?",
            "reference": "B", "options": {"A": "12", "B": "14", "C": "16", "D": "18"}, "votes": [1, 1, 0],
            "majority": 1, "verdict": "YES", "rule_score": 1.0, "rewards": {"questioner": 0.5, "responder": 1.0,
                                                                           "verifier": 0.67}}
    pad = max(0, size - len(json.dumps(base)) - 40)
    words = "the report says revenue grew in the third quarter so the answer is B ".split()
    text = []
    while sum(len(w) + 1 for w in text) < pad:
        text.append(rng.choice(words))
    base["response"] = " ".join(text)[:pad]
    return base


# --- publisher (a child process, so its work does not delay the clients' event loop) ------------


def publisher(run_id: int, rate: float, seconds: float, seed: int) -> None:
    _django()
    from workers.relay import EventRelay

    relay = EventRelay(run_id, "/nonexistent/events.jsonl", live_samples_per_step=10**9)
    rng = random.Random(seed)
    interval = 1.0 / rate
    total = int(rate * seconds)
    start = time.perf_counter()
    relay.layer  # noqa: B018 - connect before the clock starts
    for seq in range(total):
        due = start + seq * interval
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        if rng.random() < 0.2:
            type_, payload = "metrics", metrics_payload(rng, seq)
        else:
            type_, payload = "sample", sample_payload(rng, rng.randint(1024, 8192))
        payload[BENCH_KEY] = time.time()
        relay._send([{"seq": seq, "attempt": 1, "step": seq // 10, "type": type_, "time": time.time(), "payload": payload}])
    print(json.dumps({"sent": total, "seconds": time.perf_counter() - start}), flush=True)


# --- the bench ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not start")


def setup_run():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from spell.config import preset
    from webapp.accounts.models import Membership, Team
    from webapp.runs.models import Run

    call_command("migrate", verbosity=0, interactive=False)
    tag = f"bench-ws-{os.getpid()}"
    team = Team.objects.create(name=tag, slug=tag)
    user = get_user_model().objects.create_user(tag, password="bench-password-1")
    Membership.objects.create(user=user, team=team, role=Membership.Role.MEMBER)
    run = Run.objects.create(team=team, name=tag, config=preset("cpu-demo").to_dict(), queue="bench-none",
                             state=Run.State.RUNNING, created_by=user)
    client = Client()
    client.force_login(user)
    return team, user, run, client.cookies["sessionid"].value


async def ws_client(url: str, cookie: str, origin: str, expected: int, latencies: list, ready: asyncio.Event,
                    counter: list, done: asyncio.Event) -> int:
    import websockets

    received = 0
    async with websockets.connect(url, additional_headers={"Cookie": f"sessionid={cookie}", "Origin": origin},
                                  max_size=2**24) as ws:
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        while received < expected:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=5)
            except asyncio.TimeoutError:
                if done.is_set():
                    break
                continue
            data = json.loads(raw)
            now = time.time()
            if data.get("kind") != "events":
                continue
            for event in data["events"]:
                t = event.get("payload", {}).get(BENCH_KEY)
                if t is not None:
                    latencies.append(now - t)
                    received += 1
    return received


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


async def measure(port: int, run_id: int, cookie: str, clients: int, rate: float, seconds: float, seed: int) -> dict:
    total = int(rate * seconds)
    url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/"
    origin = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    ready, done = asyncio.Event(), asyncio.Event()
    counter = [0, clients]
    tasks = [asyncio.create_task(ws_client(url, cookie, origin, total, latencies, ready, counter, done))
             for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(1.0)  # every consumer has joined the group
    pub = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--publisher", str(run_id), "--rate", str(rate), "--seconds", str(seconds),
        "--seed", str(seed), stdout=asyncio.subprocess.PIPE, env=os.environ.copy())
    out, _ = await pub.communicate()
    await asyncio.sleep(3.0)  # the last messages in flight
    done.set()
    counts = await asyncio.gather(*tasks)
    lat = sorted(x * 1000 for x in latencies)
    return {"clients": clients, "rate": rate, "seconds": seconds, "events": total,
            "publisher": json.loads(out.decode().strip().splitlines()[-1]) if out else None,
            "received": sum(counts), "expected": total * clients, "lost": total * clients - sum(counts),
            "p50_ms": statistics.median(lat) if lat else None, "p95_ms": pct(lat, 0.95) if lat else None,
            "p99_ms": pct(lat, 0.99) if lat else None, "max_ms": lat[-1] if lat else None,
            "mean_ms": statistics.mean(lat) if lat else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--rate", type=float, default=50.0, help="events per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--short", action="store_true", help="CI: 5 clients, 20 events/s, 5 s")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    ap.add_argument("--publisher", type=int, metavar="RUN_ID", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publisher is not None:
        publisher(args.publisher, args.rate, args.seconds, args.seed)
        return 0
    if args.short:
        args.clients, args.rate, args.seconds = 5, 20.0, 5.0

    _django()
    from django.conf import settings

    server = None
    if settings.EMBEDDED_REDIS:
        from webapp.embedded_redis import ensure_running

        server = ensure_running(settings.REDIS_URL)
    team, user, run, cookie = setup_run()
    port = free_port()
    daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
                              cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, daphne)
        load_before = os.getloadavg()[0]
        result = asyncio.run(measure(port, run.pk, cookie, args.clients, args.rate, args.seconds, args.seed))
        result["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
        result["cpus"] = os.cpu_count()
        result["redis"] = "embedded" if settings.EMBEDDED_REDIS else settings.REDIS_URL
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{result['clients']} clients, {result['rate']:g} events/s for {result['seconds']:g} s "
                  f"({result['events']} events; Redis {result['redis']}; load average {result['load_average']} "
                  f"on {result['cpus']} cores)")
            print(f"received {result['received']} of {result['expected']} (lost {result['lost']})")
            if result["p50_ms"] is not None:
                print(f"publish -> receive: p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, "
                      f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms")
    finally:
        daphne.terminate()
        try:
            daphne.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daphne.kill()
        run.delete()
        team.delete()
        user.delete()
        if server is not None:
            server.stop()
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
