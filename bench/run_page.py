"""Time the run page and the triple table of a run with 1M stored samples and 100k metric points.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/run_page.py
    ... --samples 1000000 --steps 1000 --metrics 100 --repeat 20

PostgreSQL only (the numbers the issue asks for). It migrates the database, makes a team, a user,
a corpus and one run, loads the rows with COPY (realistic short triples of about 300 bytes:
question, reference, response, verdict, votes, rewards; 10% rule/verifier disagreements, 15%
split votes; one metrics event per step with `--metrics` numbers, as the relay stores them), then
times each URL through Django's test client in this process (server time: middleware, views,
queries, templates; no network) and prints median / p95 in ms. Everything it made is deleted at the
end, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

TASKS = ("doc_general_qa", "doc_mc", "docmath_qa")
WORDS = ("revenue growth quarter board member report clause contract policy rate region figure table river "
         "court author chapter ruling patient dosage trial result filing segment margin").split()


def metric_payload(rng: random.Random, step: int, names: int) -> dict:
    """A metrics event shaped like spell's (docs/events.md), padded to `names` numbers."""
    p = {
        "reward": {"questioner": rng.random(), "responder": rng.random(), "verifier": rng.random(), "rule": rng.random()},
        "pass_rate": {"responder": rng.random(), "rule": rng.random(), "grounding": rng.random()},
        "questioner": {"samples": 16, "valid": 14, "parse_rate": 0.9, "format_error": 1, "ungrounded": 1,
                       "zero_variance": 3, "all_solved": 2, "none_solved": 1, "dropped": 0, "skipped_context": 0,
                       "rbar": rng.random()},
        "responder": {"groups": 14, "varied_groups": 10, "keep_ratio": rng.random(), "response_tokens": 300.0,
                      "truncated_rate": 0.1 * rng.random(), "no_answer_rate": 0.05},
        "verifier": {"judgments": 100, "yes_rate": rng.random(), "format_error_rate": 0.01,
                     "agreement_with_rule": rng.random(), "eligible_groups": 5},
        "context_tokens": {"mean": 4000.0, "max": 8000}, "memory": {"depth_mean": 1.5, "depth_max": 3},
        "curriculum": {"stage": step // 300, "max_context": 8000, "rolling_accuracy": rng.random()},
        "task": {t: {"questions": 5, "valid": 4, "responder_reward": rng.random(), "pass_rate": rng.random(),
                     "questioner_reward": rng.random()} for t in TASKS},
        "train": {"loss": rng.random(), "pg_loss": rng.random(), "kl": 0.01, "entropy": 1.2, "grad_norm": 0.8,
                  "clip_fraction": 0.02, "tokens": 30000},
        "throughput": {"generated_tokens": 90000, "generation_tokens_per_s": 5000.0, "trained_tokens_per_s": 9000.0},
        "time": {"generation": 40.0, "logprob": 5.0, "update": 10.0, "weight_sync": 1.0, "total": 58.0,
                 "outside_model": 2.0, "outside_model_share": 0.03},
    }
    flat = _flat(p)
    for i in range(len(flat), names):
        p.setdefault("extra", {})[f"m{i}"] = rng.random()
    return p


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _copy(table: str, columns: list[str], rows) -> int:
    """COPY rows (tuples of python values, JSON already dumped) into table; returns rows written."""
    n = 0
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg 3
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def load(run, samples: int, steps: int, names: int, seed: int) -> None:
    from webapp.runs.models import MetricPoint, Run, RunEvent, Sample

    rng = random.Random(seed)
    per_step = max(1, samples // steps)
    seq = 0
    events, points = [], []
    sample_rows = []
    t0 = time.perf_counter()

    def words(n):
        return " ".join(rng.choice(WORDS) for _ in range(n))

    for step in range(1, steps + 1):
        payload = metric_payload(rng, step, names)
        events.append((run.pk, seq, seq, 1, step, "metrics", time.time(), json.dumps({"v": 1, **payload}), False))
        for name, value in _flat(payload).items():
            points.append((run.pk, seq, step, 1, name, value, False))
        seq += 1
        for i in range(per_step if step < steps else samples - per_step * (steps - 1)):
            task = TASKS[i % 3]
            disagree = rng.random() < 0.10
            split = rng.random() < 0.15
            verdict = rng.choice(("YES", "NO", "YES", "SKIPPED")) if not disagree else "YES"
            votes = [1, 0, 1] if split else ([1, 1, 1] if verdict == "YES" else [0, 0, 0])
            rule = 0.0 if disagree else (1.0 if verdict == "YES" else 0.0)
            sample_rows.append((
                run.pk, seq, 0, step, 1, task, words(10) + "?", words(3), words(16),
                verdict, "1" if verdict == "YES" else "0", rule,
                json.dumps({"questioner": 0.5, "responder": rule, "verifier": 1.0}), json.dumps(votes),
                disagree, split, json.dumps({"questioner_status": "valid"}), False))
            seq += 1
    print(f"generated {len(sample_rows):,} samples, {len(points):,} metric points in {time.perf_counter() - t0:.1f}s",
          flush=True)
    t0 = time.perf_counter()
    with transaction.atomic():
        _copy(RunEvent._meta.db_table, ["run_id", "seq", "src_seq", "attempt", "step", "type", "time", "payload",
                                        "superseded"], events)
        _copy(MetricPoint._meta.db_table, ["run_id", "seq", "step", "attempt", "name", "value", "superseded"], points)
        _copy(Sample._meta.db_table, ["run_id", "seq", "index", "step", "attempt", "task", "question", "reference",
                                      "response", "verdict", "majority", "rule_score", "rewards", "votes",
                                      "disagreement", "split_votes", "extra", "superseded"], sample_rows)
        Run.objects.filter(pk=run.pk).update(last_seq=seq - 1, last_step=steps, state=Run.State.SUCCEEDED)
    with connection.cursor() as cur:
        for model in (Sample, MetricPoint, RunEvent):
            cur.execute(f"ANALYZE {model._meta.db_table}")
    avg = statistics.mean(len(r[6]) + len(r[7]) + len(r[8]) + len(r[12]) + len(r[13]) + len(r[16]) + 40
                          for r in sample_rows[:2000])
    print(f"COPY + ANALYZE in {time.perf_counter() - t0:.1f}s (about {avg:.0f} bytes per sample row)", flush=True)


def timed(client: Client, url: str, repeat: int) -> dict:
    times, status, size = [], None, 0
    client.get(url)  # warm: connection, template cache, plans
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        status, size = response.status_code, len(response.content)
    times.sort()
    return {"url": url, "status": status, "bytes": size, "median_ms": statistics.median(times),
            "p95_ms": times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], "max_ms": times[-1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--metrics", type=int, default=100, help="numbers per metrics event (x steps = metric points)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="leave the rows in place (for EXPLAIN by hand)")
    args = ap.parse_args()
    if connection.vendor != "postgresql":
        print("bench/run_page.py needs PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0, interactive=False)

    from django.contrib.auth import get_user_model

    from webapp.accounts.models import Membership, Team
    from webapp.corpora.models import Corpus
    from webapp.runs import services
    from webapp.runs.models import ModelEntry, Run, Sample

    tag = f"bench-run-page-{os.getpid()}"
    team = Team.objects.create(name=tag, slug=tag)
    user = get_user_model().objects.create_user(tag, password="bench-password-1")
    Membership.objects.create(user=user, team=team, role=Membership.Role.MEMBER)
    entry = ModelEntry.objects.create(name=tag, path="var/models/tiny", max_positions=8192)
    corpus = Corpus.objects.create(team=team, name=tag, status=Corpus.Status.READY)
    run = None
    try:
        cfg = services.build_config("cpu-demo", {}, entry)
        run = Run.objects.create(team=team, name=tag, corpus=corpus, model_entry=entry, config=cfg.to_dict(),
                                 preset="cpu-demo", queue="bench-none", created_by=user)
        load(run, args.samples, args.steps, args.metrics, args.seed)
        client = Client()
        client.force_login(user)
        mid = Sample.objects.filter(run=run).order_by("id").values_list("id", flat=True)[args.samples // 2]
        some = Sample.objects.filter(run=run).order_by("-id").values_list("id", flat=True).first()
        base = f"/runs/{run.pk}"
        urls = [
            f"{base}/",
            f"{base}/samples?limit=50",
            f"{base}/samples?limit=50&after_id={mid}",
            f"{base}/samples?limit=50&disagreement=1&after_id={mid}",
            f"{base}/triples.json?limit=50",
            f"{base}/triples.json?limit=50&before_id={mid}",
            f"{base}/triples.json?limit=50&task=doc_mc&verdict=NO",
            f"{base}/triples.json?limit=50&disagreement=1",
            f"{base}/triples.json?limit=50&split_votes=1&role=verifier",
            f"{base}/triples.json?limit=50&step={args.steps // 2}",
            f"{base}/samples/{some}/",
            f"{base}/alarms.json",
            f"{base}/series.json",
            f"{base}/series.json?names=reward.responder,train.kl&max_points=500",
        ]
        print(f"\nrun #{run.pk}: {args.samples:,} samples, {args.steps * args.metrics:,} metric points; "
              f"{args.repeat} timed requests each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
        print(f"{'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'status':>6} {'bytes':>9}  url")
        for url in urls:
            r = timed(client, url, args.repeat)
            print(f"{r['median_ms']:10.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f} {r['status']:>6} {r['bytes']:>9}  {url}",
                  flush=True)
    finally:
        if not args.keep:
            t0 = time.perf_counter()
            if run is not None:
                from webapp.runs.models import MetricPoint, RunEvent

                with transaction.atomic():
                    for model in (Sample, MetricPoint, RunEvent):
                        model.objects.filter(run=run)._raw_delete(connection.alias)
                    run.delete()
            corpus.delete(), entry.delete(), team.delete(), user.delete()
            print(f"\ncleaned up in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
