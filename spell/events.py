"""The event stream a training process writes: `OUT/events.jsonl`, one JSON object a line.

The worker tails this file and relays every line, so the rules are strict (docs/events.md):
- one line per event, written with a single `write` and flushed at once, so a reader never sees
  half of a line except the very last one while it is being written (or after a crash);
- `seq` is contiguous within the file; a resumed process opens the same file and continues from
  the last complete line's seq (a torn last line is cut off first, so it is never followed by
  good lines);
- every event carries `attempt` and `step`, so the worker can mark a superseded attempt's steps.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from spell import rundir

# 2: `progress` events; heartbeats moved out of the stream to OUT/heartbeat.json.
SCHEMA_VERSION = 2
# "heartbeat" stays readable: version-1 files carry them (a resumed old run, a stored run folder).
EVENT_TYPES = ("metrics", "sample", "stage", "checkpoint", "eval", "log", "error", "progress", "heartbeat")
# Events the relay keeps as the latest per phase instead of a row each (spell/progress.py).
TRANSIENT_TYPES = ("progress",)
# Event types whose numeric payload leaves are metric series, and the prefix each series gets: the
# dashboard, the relay and the experiment trackers all name a metric this way.
METRIC_PREFIX = {"metrics": "", "eval": "eval.", "stage": "stage."}


class Superseded(BaseException):
    """The run folder belongs to a newer attempt now (spell/rundir.py, the fence): this process
    stops before writing anything more. A BaseException, like Cancelled, so no `except Exception`
    on the way swallows it."""


@dataclass(frozen=True)
class Event:
    v: int
    seq: int
    type: str
    step: int
    attempt: int
    time: float
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "seq": self.seq,
            "type": self.type,
            "step": self.step,
            "attempt": self.attempt,
            "time": self.time,
            "payload": self.payload,
        }


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader (browsers too) can parse the line."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


def finite_number(value: Any) -> float | None:
    """A JSON number (or bool) as a float; None for anything else, NaN and infinities included."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def metric_values(payload: dict[str, Any], prefix: str = "") -> dict[str, float | None]:
    """Numeric leaves of a payload, flattened to dotted names (`reward.responder`). A null leaf (a
    NaN the process wrote as null) stays None: a gap in a chart."""
    out: dict[str, float | None] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(metric_values(value, name + "."))
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            out[name[:200]] = finite_number(value)
    return out


def _split_complete(data: bytes) -> tuple[list[bytes], int]:
    """Complete lines of `data` and the byte length they cover (a torn tail is left out)."""
    end = data.rfind(b"\n") + 1
    return [line for line in data[:end].split(b"\n") if line.strip()], end


def read_events(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete events in the file. A torn last line (a crash mid-write, or a writer that is
    writing right now) is ignored; so is a line that does not parse as a JSON object."""
    return list(iter_events(path))


def iter_events(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return
    lines, _ = _split_complete(p.read_bytes())
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


class EventWriter:
    """Appends events to `path`. Thread-safe (the heartbeat thread writes too).

    `step` is the writer's current step, set by the loop (`writer.step = k`), used when an
    event does not name its own step (heartbeats, logs).
    """

    def __init__(self, path: str | os.PathLike, attempt: int = 1, *, enabled: bool = True):
        self.path = Path(path)
        self.attempt = int(attempt)
        self.step = 0
        # Ranks other than 0 of a multi-GPU run get a disabled writer: one stream per run.
        self.enabled = enabled
        self._lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self._file = None
        self.next_seq = 0
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.next_seq = self._repair_and_count()
            self._file = open(self.path, "ab", buffering=0)

    def _repair_and_count(self) -> int:
        """Cut a torn last line (so the next event starts on its own line) and return the seq
        after the last complete event."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        lines, end = _split_complete(data)
        if end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)
        for line in reversed(lines):
            try:
                return int(json.loads(line)["seq"]) + 1
            except (ValueError, KeyError, TypeError):
                continue
        return 0

    def check_owner(self) -> None:
        """Raise Superseded when another attempt claimed the run folder (spell/rundir.py)."""
        held = rundir.owner(self.path.parent)
        if held is not None and held != self.attempt:
            raise Superseded(f"attempt {self.attempt}: the run folder {self.path.parent} belongs to attempt {held} now")

    def emit(self, type: str, payload: dict[str, Any] | None = None, *, step: int | None = None) -> Event | None:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        if not self.enabled:
            return None
        self.check_owner()  # a file read per event: cheap next to what an event reports
        with self._lock:
            if self._file is None:
                raise ValueError("event writer is closed")
            event = Event(
                v=SCHEMA_VERSION,
                seq=self.next_seq,
                type=type,
                step=int(self.step if step is None else step),
                attempt=self.attempt,
                time=round(time.time(), 3),
                payload=_clean(payload or {}),
            )
            line = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
            # One unbuffered write per line: the worker never sees two events interleaved.
            self._file.write(line.encode("utf-8"))
            self.next_seq += 1
            return event

    # Shorthands used by the loop.
    def log(self, message: str, *, level: str = "info", step: int | None = None, **extra: Any) -> None:
        self.emit("log", {"message": message, "level": level, **extra}, step=step)

    def error(self, message: str, *, kind: str = "crash", step: int | None = None, **extra: Any) -> None:
        self.emit("error", {"message": message, "kind": kind, **extra}, step=step)

    @property
    def heartbeat_path(self) -> Path:
        return self.path.with_name("heartbeat.json")

    def start_heartbeat(self, interval: float = 10.0) -> None:
        """A daemon thread that rewrites OUT/heartbeat.json ({time, uptime_s, pid, step, attempt})
        every `interval` seconds until `close()`. Not an event: a beat every few seconds would bury
        the events a person reads."""
        if not self.enabled or self._heartbeat is not None:
            return
        started = time.time()

        def beat() -> None:
            while True:
                try:
                    self._write_heartbeat(started)
                except OSError:  # a full disk must not kill the training process
                    pass
                if self._stop.wait(interval):
                    return

        self._heartbeat = threading.Thread(target=beat, name="spell-heartbeat", daemon=True)
        self._heartbeat.start()

    def _write_heartbeat(self, started: float) -> None:
        if not rundir.owns(self.path.parent, self.attempt):
            return  # the newer attempt's beat is not ours to overwrite
        now = time.time()
        beat = {"time": round(now, 3), "uptime_s": round(now - started, 1), "pid": os.getpid(),
                "step": self.step, "attempt": self.attempt}
        tmp = self.heartbeat_path.with_name(f".heartbeat.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(beat), encoding="utf-8")
        os.replace(tmp, self.heartbeat_path)

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
            self._heartbeat = None
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
