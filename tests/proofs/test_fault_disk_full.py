"""Fault: the disk fills while a checkpoint is being written.

The run directory lives on a small tmpfs of its own; after the first checkpoint the test fills it
up to the last few MiB, so the next checkpoint's real writes (safetensors, torch.save) hit ENOSPC.
Expected: the run fails with one clear line saying the disk is full, the checkpoint `latest`
names is the previous one and still loads, no half-written folder is left, nothing is lost.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests.proofs.conftest import (
    assert_checkpoint_loads, assert_nothing_lost, launch_tiny, run_row, start_worker, state_of, wait_for,
)

DISK_MB = 96
LEFT_FREE = 4 << 20  # less than one tiny-model checkpoint (~16 MiB), plenty for events


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or done.returncode}); this proof needs one")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """A real file taking all but about `leave` bytes of the filesystem.

    The run keeps writing (and deleting) checkpoints while this runs, so the free space moves
    under us: allocate what is free now, and on ENOSPC measure again and take half as much."""
    filler = disk / "filler.bin"
    size = 0
    with open(filler, "wb") as f:
        for _ in range(50):
            want = _free(disk) - leave
            if want <= 0:
                break
            while want > 0 and not _allocate(f, size, want):
                want //= 2
            size += max(want, 0)
    assert size > 0, "could not fill the small disk"
    return filler


def _allocate(f, offset: int, length: int) -> bool:
    """Reserve `length` bytes at `offset`; False when the disk has no room for them."""
    try:
        os.posix_fallocate(f.fileno(), offset, length)
        return True
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        return False


def _free(disk: Path) -> int:
    stats = os.statvfs(disk)
    return stats.f_bavail * stats.f_frsize


def test_it_fails_clearly_and_keeps_the_previous_checkpoint_when_the_disk_fills(world, small_disk, settings):
    from webapp.runs.models import Run, RunEvent

    runs_root = small_disk / "runs"
    runs_root.mkdir()
    settings.RUNS_ROOT = runs_root
    world = {**world, "runs_root": runs_root}
    worker = start_worker(world, "smalldisk")
    try:
        # Far more steps than can finish while the test fills the disk: on a fast machine a short
        # run would end before the fill lands, and nothing would be left to fail.
        run = launch_tiny(world, 500)
        wait_for(lambda: RunEvent.objects.filter(run_id=run.pk, type="checkpoint").exists(), "a first checkpoint",
                 logs=[worker])
        fill(small_disk, LEFT_FREE)

        wait_for(lambda: state_of(run) in Run.TERMINAL, "the run to end", logs=[worker])
        row = run_row(run)
        assert row.state == Run.State.FAILED
        assert "no space left on the device" in row.error and "is kept" in row.error, row.error
        assert "Traceback" not in row.error

        run_dir = Path(row.run_dir)
        kept = list(RunEvent.objects.filter(run_id=run.pk, type="checkpoint").order_by("seq").values_list("step", flat=True))
        assert_checkpoint_loads(run_dir, step=kept[-1])  # the previous checkpoint, intact
        failed_step = kept[-1] + 1
        assert not (run_dir / "checkpoints" / f"step-{failed_step:06d}").exists()
        assert f"step-{kept[-1]:06d} is kept" in row.error
        error = RunEvent.objects.get(run_id=run.pk, type="error")
        assert "no space left" in error.payload["message"]
        assert_nothing_lost(run)
    finally:
        worker.stop()
