"""Fault: the training process prints garbage - lines in events.jsonl that are not events (not
JSON, JSON without a known type, a payload that is not an object, binary junk, a cut-off record)
and junk on stdout / stderr. Expected: each bad line is logged by the worker and skipped, every
real event is stored once with contiguous seqs, the run succeeds, the junk is in the run's log.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.proofs.conftest import (
    assert_checkpoint_loads, assert_nothing_lost, file_events, launch_tiny, run_row, start_worker, state_of, wait_for,
)

NOISY = f"{sys.executable} {Path(__file__).with_name('noisy_train.py')}"


def test_it_logs_and_skips_garbage_lines_and_keeps_every_event(world):
    from webapp.runs.models import Run, RunEvent

    worker = start_worker(world, "noisy", SPELL_TRAIN_COMMAND=NOISY)
    try:
        run = launch_tiny(world, 3)
        wait_for(lambda: state_of(run) in Run.TERMINAL, "the run to end", logs=[worker])
        row = run_row(run)
        assert row.state == Run.State.SUCCEEDED, row.error

        run_dir = Path(row.run_dir)
        good, bad = file_events(run_dir)
        # One or two bursts of eight, depending on whether the run outlived the sprayer's pause.
        assert len(bad) in (8, 16), bad
        assert worker.log().count("skipping a line of events.jsonl that is not an event") == len(bad)
        rows = assert_nothing_lost(run)
        assert len(rows) == len(good)
        assert RunEvent.objects.filter(run_id=run.pk, type="metrics").count() == 3
        assert not RunEvent.objects.filter(run_id=run.pk, type="error").exists()
        attempt_log = (run_dir / "logs" / "attempt-1.log").read_text(errors="replace")
        assert attempt_log.count("garbage on stdout") == len(bad) and "garbage on stderr" in attempt_log
        assert_checkpoint_loads(run_dir, step=3)
    finally:
        worker.stop()
