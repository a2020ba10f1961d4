"""The event relay: the one class between a training process's events.jsonl and the rest.

It tails `OUT/events.jsonl` from the byte offset already stored, skips (and logs) lines that are
not well-formed events, gives each event the run-wide contiguous `seq`, stores events plus the
Sample and MetricPoint rows derived from them in one transaction together with the new offset
(so a worker that restarts continues exactly where the last one stopped, and a repeated batch
stores nothing twice: unique (run, seq)), and sends them to the run's channel-layer group
`run-<id>` - every event, except that at most LIVE_SAMPLES_PER_STEP samples per step go live
(all of them are stored). State changes go to the same group through `publish_state`.

Every string of an event goes through webapp.storable.storable when it is parsed: a NUL in a model
output is stored (and sent) as U+2400, never refused by PostgreSQL, never dropped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from spell.events import EVENT_TYPES, METRIC_PREFIX, TRANSIENT_TYPES, metric_values
from spell.events import finite_number as _number
from spell.progress import summary
from webapp.audits.services import enqueue_for_review
from webapp.runs.live import group_name, publish_state
from webapp.runs.live import group_send as _group_send
from webapp.runs.models import MetricPoint, Run, RunEvent, Sample
from webapp.storable import storable

log = logging.getLogger(__name__)

READ_CHUNK = 4 << 20  # bytes read per poll at most
SEND_BATCH = 200  # events per channel-layer message
SAMPLE_KEYS = ("task", "question", "reference", "response", "verdict", "majority", "rule_score", "rewards",
               "votes", "disagreement", "split_votes")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def sample_fields(triple: dict[str, Any]) -> dict[str, Any]:
    """Sample columns from one triple of a `sample` event (docs/events.md); unknown keys go to extra."""
    votes = triple.get("votes") if isinstance(triple.get("votes"), list) else []
    rewards = triple.get("rewards") if isinstance(triple.get("rewards"), dict) else {}
    rule_score = _number(triple.get("rule_score"))
    majority = triple.get("majority")
    disagreement = triple.get("disagreement")
    if not isinstance(disagreement, bool):
        m = _number(majority)
        disagreement = bool(m is not None and m >= 0 and rule_score is not None and rule_score in (0.0, 1.0) and m != rule_score)
    split = triple.get("split_votes")
    if not isinstance(split, bool):
        valid = {json.dumps(v) for v in votes if v not in (None, -1)}
        split = len(valid) > 1
    return {
        "task": _text(triple.get("task"))[:40],
        "question": _text(triple.get("question")),
        "reference": _text(triple.get("reference", triple.get("answer"))),
        "response": _text(triple.get("response")),
        "verdict": _text(triple.get("verdict"))[:40],
        "majority": _text(majority)[:40],
        "rule_score": rule_score,
        "rewards": rewards,
        "votes": votes,
        "disagreement": disagreement,
        "split_votes": split,
        "extra": {k: v for k, v in triple.items() if k not in SAMPLE_KEYS and k != "answer"},
    }


def triples(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A sample event carries one triple, or several under `samples`."""
    many = payload.get("samples")
    if isinstance(many, list):
        return [t for t in many if isinstance(t, dict)]
    return [payload]


def latest_progress(events: list[dict[str, Any]]) -> dict[str, Any]:
    """{phase: the latest progress of that phase, with its step, attempt and time}."""
    out: dict[str, Any] = {}
    for e in events:
        phase = e["payload"].get("phase")
        if isinstance(phase, str) and phase:
            out[phase[:40]] = {**e["payload"], "step": e["step"], "attempt": e["attempt"], "time": e["time"]}
    return out


class EventRelay:
    def __init__(self, run_id: int, events_path: str | Path, *, attempt: int = 1,
                 live_samples_per_step: int | None = None, channel_layer: Any = None):
        self.run_id = run_id
        self.path = Path(events_path)
        self.attempt = attempt
        self.k = settings.LIVE_SAMPLES_PER_STEP if live_samples_per_step is None else live_samples_per_step
        self._layer = channel_layer
        run = Run.objects.only("events_offset", "last_seq").get(pk=run_id)
        self.offset = run.events_offset
        self.next_seq = run.last_seq + 1
        self._live_counts: dict[tuple[int, int], int] = {}
        self.garbage_lines = 0
        self.seen: list[dict[str, Any]] = []  # events of this relay's lifetime worth remembering (errors, logs)

    # --- reading ----------------------------------------------------------------------------

    def poll(self) -> int:
        """Store and send every complete line appended since the last poll; returns events stored."""
        stored = 0
        while True:
            lines, end = self._read()
            if end == self.offset:
                return stored
            parsed = [e for e in (self._parse(line) for line in lines) if e is not None]
            events = [e for e in parsed if e["type"] not in TRANSIENT_TYPES]
            progress = latest_progress([e for e in parsed if e["type"] == "progress" and e["attempt"] == self.attempt])
            if not self._store(events, end, progress):
                continue
            if progress:  # before the events: a step's last progress comes before its metrics
                latest = max(progress.values(), key=lambda p: p.get("time") or 0.0)
                _group_send(self.layer, self.run_id, {"type": "run.progress", "run": self.run_id, "progress": progress,
                                                      "line": summary(progress), "step": latest["step"],
                                                      "phase": latest["phase"]})
            self._send(events)
            stored += len(events)

    def _read(self) -> tuple[list[bytes], int]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return [], self.offset
        if size < self.offset:
            # The file was replaced (a fresh start without --resume): read it from the top.
            log.warning("run %s: %s shrank below the stored offset; reading it again from the start", self.run_id, self.path)
            self.offset = 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(READ_CHUNK)
        cut = data.rfind(b"\n") + 1  # a torn last line waits for its newline
        if cut == 0 and len(data) == READ_CHUNK:  # one absurdly long line: skip it whole
            log.warning("run %s: skipping an event line longer than %d bytes", self.run_id, READ_CHUNK)
            return [], self.offset + len(data)
        return data[:cut].split(b"\n")[:-1] if cut else [], self.offset + cut

    def _parse(self, line: bytes) -> dict[str, Any] | None:
        if not line.strip():
            return None
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or obj.get("type") not in EVENT_TYPES or not isinstance(obj.get("payload", {}), dict):
            self.garbage_lines += 1
            log.warning("run %s: skipping a line of events.jsonl that is not an event: %.200r", self.run_id, line)
            return None

        def as_int(value: Any, default: int) -> int:
            return value if isinstance(value, int) and not isinstance(value, bool) else default

        event = {
            "src_seq": as_int(obj.get("seq"), -1),
            "type": obj["type"],
            "step": as_int(obj.get("step"), 0),
            "attempt": as_int(obj.get("attempt"), self.attempt),
            "time": _number(obj.get("time")),
            "payload": storable(obj.get("payload") or {}),  # NUL -> U+2400: text PostgreSQL can store
        }
        if event["type"] in ("error", "log", "checkpoint"):
            self.seen.append(event)
        return event

    # --- storing ----------------------------------------------------------------------------

    def _store(self, events: list[dict[str, Any]], end_offset: int, progress: dict[str, Any] | None = None) -> bool:
        """Store one batch read from self.offset; False (nothing written) when the database is
        ahead of this relay: a commit whose answer was lost with the connection (the database
        restarting) did land, so the relay takes the stored offset and seq and reads again."""
        with transaction.atomic():
            run = Run.objects.select_for_update().only("last_seq", "events_offset", "last_step", "progress", "attempt").get(pk=self.run_id)
            if run.last_seq != self.next_seq - 1:
                log.warning("run %s: the database already holds events up to seq %s (this relay had %s); "
                            "reading again from the stored offset", self.run_id, run.last_seq, self.next_seq - 1)
                self.offset, self.next_seq = run.events_offset, run.last_seq + 1
                return False
            seq = run.last_seq + 1
            rows, samples, points = [], [], []
            for event in events:
                event["seq"] = seq
                rows.append(RunEvent(run_id=self.run_id, seq=seq, src_seq=event["src_seq"], attempt=event["attempt"],
                                     step=event["step"], type=event["type"], time=event["time"], payload=event["payload"]))
                if event["type"] == "sample":
                    for i, triple in enumerate(triples(event["payload"])):
                        samples.append(Sample(run_id=self.run_id, seq=seq, index=i, step=event["step"],
                                              attempt=event["attempt"], **sample_fields(triple)))
                elif event["type"] in METRIC_PREFIX:
                    for name, value in metric_values(event["payload"], METRIC_PREFIX[event["type"]]).items():
                        points.append(MetricPoint(run_id=self.run_id, seq=seq, step=event["step"],
                                                  attempt=event["attempt"], name=name, value=value))
                seq += 1
            RunEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
            Sample.objects.bulk_create(samples, ignore_conflicts=True, batch_size=500)
            enqueue_for_review(samples)  # the share of judgments people will audit
            MetricPoint.objects.bulk_create(points, ignore_conflicts=True, batch_size=1000)
            # The last finished step: a step's metrics event ends it (logs and samples name the
            # step in progress, so counting them would show a step as done before it is).
            last_step = max([run.last_step] + [e["step"] for e in events if e["attempt"] == self.attempt and e["type"] == "metrics"])
            fields: dict[str, Any] = {"last_seq": seq - 1, "events_offset": end_offset, "last_step": last_step}
            if progress:
                kept = {k: v for k, v in (run.progress or {}).items() if isinstance(v, dict) and v.get("attempt") == self.attempt}
                fields["progress"] = {**kept, **progress}
            Run.objects.filter(pk=self.run_id).update(**fields)
        self.offset = end_offset
        self.next_seq = seq
        return True

    # --- sending ----------------------------------------------------------------------------

    @property
    def layer(self):
        if self._layer is None:
            from channels.layers import get_channel_layer

            self._layer = get_channel_layer()
        return self._layer

    def _live(self, event: dict[str, Any]) -> bool:
        if event["type"] == "heartbeat":
            return False
        if event["type"] != "sample":
            return True
        key = (event["attempt"], event["step"])
        self._live_counts[key] = self._live_counts.get(key, 0) + 1
        return self._live_counts[key] <= self.k

    def _send(self, events: list[dict[str, Any]]) -> None:
        live = [
            {"seq": e["seq"], "attempt": e["attempt"], "step": e["step"], "type": e["type"], "time": e["time"],
             "payload": e["payload"], "superseded": False}
            for e in events if self._live(e)
        ]
        for i in range(0, len(live), SEND_BATCH):
            _group_send(self.layer, self.run_id, {"type": "run.events", "run": self.run_id, "events": live[i:i + SEND_BATCH]})

    publish_state = staticmethod(publish_state)  # webapp.runs.live: the one place it is written

    @staticmethod
    def mark_superseded(run_id: int, attempt: int, after_step: int) -> int:
        """Events, samples and metrics of attempts before `attempt` for steps after `after_step`
        (the checkpoint the new attempt resumes from; -1 = a fresh start) are kept but hidden."""
        n = 0
        for model in (RunEvent, Sample, MetricPoint):
            n += model.objects.filter(run_id=run_id, attempt__lt=attempt, step__gt=after_step, superseded=False).update(superseded=True)
        return n

