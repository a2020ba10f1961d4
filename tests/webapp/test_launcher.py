"""`make run` end to end: it starts the web server, a worker and beat on the embedded default, the
page answers, and Ctrl-C stops every process it started."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil

from tests.support import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_serves_the_product_and_stops_everything_on_ctrl_c(tmp_path, db):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SPELL_VAR_DIR=str(tmp_path / "var"), PORT=str(port), SPELL_TESTING="1")
    # Started with SIGINT ignored, as a shell's background job is: Ctrl-C must still stop it.
    launcher = subprocess.Popen([sys.executable, "-m", "webapp.launcher", "--no-model"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and launcher.poll() is None:
            try:
                health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read().decode()
                if '"status": "ok"' in health:  # every part up, a worker answering
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert health and '"status": "ok"' in health, health
        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5)
        assert login.status == 200
        started = [p.pid for p in psutil.Process(launcher.pid).children(recursive=True)]
        assert len(started) >= 4  # redis, daphne, worker (+ pool), beat
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            output, _ = launcher.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(launcher.pid).children(recursive=True):
                child.kill()
            launcher.kill()
            raise
    assert "created the first admin" in output and "SPELL Studio is up" in output
    assert (tmp_path / "var" / "admin-password.txt").exists()
    time.sleep(1)
    alive = [pid for pid in started if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still running after Ctrl-C: {alive}"
