"""Fault: PostgreSQL goes away mid-run and comes back.

The machine's PostgreSQL cluster is shared, so it is not restarted: the worker reaches it through a
TCP proxy in this test, and the proxy does what a restart does to clients - every open connection
is cut and new ones are refused for a while, then accepted again. Real connection drops, real
psycopg errors in the worker. Expected: the training process goes on, the supervisor retries, the
events written meanwhile are stored once the database is back, the run succeeds, nothing is lost.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.proofs.conftest import (
    assert_checkpoint_loads, assert_nothing_lost, file_events, free_port, launch_tiny, run_row, start_worker,
    state_of, wait_for,
)

OUTAGE_SECONDS = 10


class CuttableProxy:
    """127.0.0.1:port -> upstream; cut() drops every connection and refuses new ones until restore()."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = free_port()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.connections = 0

    def start(self) -> "CuttableProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            if listener is not self.listener:  # accepted as it was being cut: refuse it too
                client.close()
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, server))
                self.connections += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close() alone would not)
        except OSError:
            pass
        listener.close()
        with self.lock:
            dropped, self.sockets = self.sockets, set()
        for s in dropped:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        if self.listener is not None:
            self.cut()


@pytest.fixture
def db_proxy(transactional_db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the database is SQLite (a file, no server to restart): run with DATABASE_URL=postgres://...")
    db = connection.settings_dict
    proxy = CuttableProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))).start()
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    url = f"postgres://{user}{password}@127.0.0.1:{proxy.port}/{db['NAME']}"
    yield proxy, url
    proxy.stop()


def test_it_stores_every_event_after_the_database_comes_back(world, db_proxy):
    from webapp.runs.models import Run, RunEvent

    proxy, url = db_proxy
    worker = start_worker(world, "pgcut", DATABASE_URL=url, CONN_MAX_AGE=60)
    try:
        run = launch_tiny(world, 6)
        wait_for(lambda: RunEvent.objects.filter(run_id=run.pk, type="checkpoint").exists(), "a first checkpoint",
                 logs=[worker])
        run_dir = Path(run_row(run).run_dir)

        proxy.cut()
        in_file_at_cut = len(file_events(run_dir)[0])
        time.sleep(OUTAGE_SECONDS)
        written_meanwhile = len(file_events(run_dir)[0]) - in_file_at_cut
        proxy.restore()

        assert written_meanwhile > 0, "the training process wrote nothing while the database was down"
        wait_for(lambda: state_of(run) in Run.TERMINAL, "the run to end", logs=[worker])
        row = run_row(run)
        assert row.state == Run.State.SUCCEEDED, row.error
        assert row.attempt == 1  # the same attempt rode it out: no restart, no resume
        assert "database unavailable" in worker.log()
        assert proxy.connections >= 2  # it did reconnect through the proxy
        assert_nothing_lost(run)
        assert_checkpoint_loads(run_dir, step=6)
    finally:
        worker.stop()
