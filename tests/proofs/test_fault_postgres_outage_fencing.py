"""Fault: a worker loses PostgreSQL for longer than WORKER_OFFLINE_AFTER_SECONDS while its training
process goes on (a network partition of one node; PostgreSQL itself stays up for everyone else).

The worker reaches the database through a TCP proxy that the test cuts (tests/proofs/
test_fault_postgres_restart.py); the rest of the fleet (the sweeper here, a second worker) reaches
it directly. Expected: the sweeper marks the silent worker offline, its run LOST, and requeues it; a
second worker claims attempt 2 in the same run directory; attempt 1's training process sees the
folder's attempt token change and stops at its next write (exit 4) *while the database is still
unreachable*, so the two attempts never write the run together; when the partition heals the first
worker's supervisor finds it lost the run and writes nothing; attempt 2 finishes the run; nothing is
lost or stored twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.proofs.conftest import (
    alive, assert_checkpoint_loads, assert_nothing_lost, launch_tiny, run_row, start_worker, state_of, wait_for,
)
from tests.proofs.test_fault_postgres_restart import db_proxy  # noqa: F401 - the fixture

STEPS = 400  # more than attempt 1 can finish before it is superseded; the test cancels attempt 2
OFFLINE_AFTER = 4


def attempt_events(run_dir: Path, attempt: int) -> int:
    count = 0
    for line in (run_dir / "events.jsonl").read_bytes().split(b"\n"):
        try:
            count += json.loads(line).get("attempt") == attempt
        except (ValueError, AttributeError):
            pass
    return count


def test_attempts_never_write_one_run_together_across_a_database_partition(world, db_proxy, settings):  # noqa: F811
    from webapp.fleet import services as fleet
    from webapp.runs import services
    from webapp.runs.models import Run, RunEvent

    proxy, url = db_proxy
    settings.WORKER_OFFLINE_AFTER_SECONDS = OFFLINE_AFTER  # the sweeper in this process
    env = {"WORKER_OFFLINE_AFTER_SECONDS": OFFLINE_AFTER}
    cut_off = start_worker(world, "partitioned", DATABASE_URL=url, CONN_MAX_AGE=60, **env)
    rescuer = None
    try:
        run = launch_tiny(world, STEPS)
        wait_for(lambda: RunEvent.objects.filter(run_id=run.pk, type="checkpoint").exists(), "a first checkpoint",
                 logs=[cut_off])
        first_pid = run_row(run).pid
        run_dir = Path(run_row(run).run_dir)

        proxy.cut()  # the partition: the first worker's heartbeats and relay stop reaching the database
        time.sleep(OFFLINE_AFTER + 2)
        swept = fleet.sweep()
        assert cut_off.hostname in swept["offline"] and run.pk in swept["lost"] and run.pk in swept["requeued"]
        assert alive(first_pid), "attempt 1 should still be training: nothing has told it yet"

        rescuer = start_worker(world, "rescuer", **env)  # direct connection; takes the requeued task
        wait_for(lambda: run_row(run).attempt == 2 and state_of(run) == Run.State.RUNNING, "attempt 2 to start",
                 logs=[rescuer])
        # Fencing: attempt 1 stops by itself although its supervisor cannot reach the database.
        wait_for(lambda: not alive(first_pid), "attempt 1's process to stop while the database is unreachable",
                 timeout=60, logs=[cut_off])
        log_1 = (run_dir / "logs" / "attempt-1.log").read_text()
        assert "belongs to attempt 2" in log_1, log_1[-2000:]
        written_by_1 = attempt_events(run_dir, 1)
        wait_for(lambda: RunEvent.objects.filter(run_id=run.pk, attempt=2, type="metrics").count() >= 2,
                 "attempt 2 to train", logs=[rescuer])

        proxy.restore()  # the partition heals; the first supervisor finds the run is no longer its own
        wait_for(lambda: "a newer attempt owns the run folder" in cut_off.log(),
                 "the first supervisor to give the run up", timeout=120, logs=[cut_off])
        assert attempt_events(run_dir, 1) == written_by_1, "attempt 1 wrote after it was superseded"
        assert (run_row(run).attempt, run_row(run).worker_hostname) == (2, rescuer.hostname)

        services.cancel(run_row(run))
        wait_for(lambda: state_of(run) in Run.TERMINAL, "attempt 2 to stop", logs=[rescuer])
        row = run_row(run)
        assert (row.state, row.attempt) == (Run.State.CANCELLED, 2), row.error
        assert_nothing_lost(run)
        assert_checkpoint_loads(run_dir)
    finally:
        if rescuer is not None:
            rescuer.stop()
        cut_off.stop()
