"""The command a worker starts a run's training process with, from the run's frozen config and the
worker's own GPUs (a fake NVML inventory of two GPUs: this machine has none): one process for a CPU
run or one GPU, torchrun with one process per GPU for more, and a clear run error when the worker has
fewer GPUs than the run asks for (the attempt ends FAILED before any process starts)."""

from __future__ import annotations

import sys

import pytest

from tests.webapp.runs.factories import make_corpus, make_run
from tests.workers.test_heartbeat import FakeNVML
from webapp.accounts.models import Team
from webapp.runs.models import ModelEntry, Run
from workers import supervisor
from workers.supervisor import NotEnoughGpus, train_command


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.delenv("SPELL_TRAIN_COMMAND", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML())  # read_gpus() imports pynvml


def cuda(num_gpus: int) -> dict:
    return {"trainer": {"device": "cuda", "num_gpus": num_gpus}}


def test_a_cpu_run_and_a_one_gpu_run_are_one_process(two_gpus):
    plain = [sys.executable, "-m", "spell", "train"]

    assert train_command({"trainer": {"device": "cpu", "num_gpus": 0}}) == plain
    assert train_command(cuda(1)) == plain


def test_two_gpus_are_two_torchrun_processes_on_a_worker_with_two(two_gpus):
    assert train_command(cuda(2)) == [sys.executable, "-m", "spell.torchrun", "--standalone",
                                      "--nproc_per_node=2", "-m", "spell", "train"]


def test_the_torchrun_launcher_survives_the_pause_signal_and_its_ranks_handle_it(tmp_path):
    """Real torchrun, two CPU processes: SIGUSR1 to the launcher's group (as the worker pauses a run)
    reaches each rank's own handler (torchrun starts its ranks in sessions of their own; the launcher
    forwards it), and the launcher ends cleanly when they do."""
    import os
    import signal
    import subprocess
    import time

    script = tmp_path / "rank.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "seen = []\n"
        "signal.signal(signal.SIGUSR1, lambda *a: seen.append(1))\n"
        "open(os.path.join(sys.argv[1], 'ready-' + os.environ['RANK']), 'w').close()\n"
        "deadline = time.time() + 60\n"
        "while not seen and time.time() < deadline: time.sleep(0.05)\n"
        "if not seen: sys.exit(3)\n"
        "open(os.path.join(sys.argv[1], 'paused-' + os.environ['RANK']), 'w').close()\n")
    launcher = subprocess.Popen([sys.executable, "-m", "spell.torchrun", "--standalone", "--nproc_per_node=2",
                                 str(script), str(tmp_path)], start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready-{r}").exists() for r in (0, 1)) and time.monotonic() < deadline:
            assert launcher.poll() is None, launcher.stdout.read().decode()[-2000:]
            time.sleep(0.1)
        os.killpg(launcher.pid, signal.SIGUSR1)
        assert launcher.wait(timeout=120) == 0, launcher.stdout.read().decode()[-2000:]
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert all((tmp_path / f"paused-{r}").exists() for r in (0, 1))


def test_more_gpus_than_the_worker_has_is_refused_with_what_to_do(two_gpus):
    with pytest.raises(NotEnoughGpus, match=r"needs 8 GPU\(s\) \(trainer.num_gpus\) and this worker has 2"):
        train_command(cuda(8))


def test_the_workers_own_launcher_setting_replaces_the_prefix(two_gpus, monkeypatch):
    monkeypatch.setenv("SPELL_TRAIN_COMMAND", "deepspeed --num_gpus 8 -m spell train")

    assert train_command(cuda(8)) == ["deepspeed", "--num_gpus", "8", "-m", "spell", "train"]


def test_a_run_needing_more_gpus_than_the_worker_has_fails_before_any_process(db, settings, tmp_path, two_gpus):
    settings.RUNS_ROOT = tmp_path / "runs"
    team = Team.objects.create(name="Lab", slug="lab")
    run = make_run(team, make_corpus(team), ModelEntry.objects.create(name="tiny", path="var/models/tiny"))
    Run.objects.filter(pk=run.pk).update(config={**run.config, "trainer": {**run.config["trainer"], "device": "cuda",
                                                                            "num_gpus": 4}})

    result = supervisor.supervise(run.pk, "w1@test", poll_seconds=0.05)

    run.refresh_from_db()
    assert result["state"] == Run.State.FAILED and run.state == Run.State.FAILED and run.pid is None
    assert "needs 4 GPU(s) (trainer.num_gpus) and this worker has 2" in run.error
