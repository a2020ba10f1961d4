import json
import time

import pytest

from spell.events import EVENT_TYPES, SCHEMA_VERSION, EventWriter, read_events


def test_it_round_trips_every_field(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path, attempt=3) as w:
        w.step = 4
        w.emit("metrics", {"loss": 0.5, "nan": float("nan")})
        w.emit("sample", {"question": "Wer? ü"}, step=2)
    events = read_events(path)
    assert [e["seq"] for e in events] == [0, 1]
    first, second = events
    assert set(first) == {"v", "seq", "type", "step", "attempt", "time", "payload"}
    assert first["v"] == SCHEMA_VERSION == 2
    assert first["type"] == "metrics" and first["step"] == 4 and first["attempt"] == 3
    assert first["payload"] == {"loss": 0.5, "nan": None}  # no NaN in JSON
    assert second["step"] == 2 and second["payload"]["question"] == "Wer? ü"
    assert abs(first["time"] - time.time()) < 60


def test_it_writes_one_flushed_line_per_event(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit("log", {"message": "a"})
    # Visible to a reader before close: flushed per line.
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["payload"]["message"] == "a"
    w.close()


def test_it_rejects_unknown_types(tmp_path):
    with EventWriter(tmp_path / "e.jsonl") as w:
        with pytest.raises(ValueError):
            w.emit("metric", {})
    # heartbeat: still read from version-1 files, no longer written into the stream
    assert {"progress", "heartbeat"} <= set(EVENT_TYPES) and len(EVENT_TYPES) == 9


def test_it_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        w.emit("log", {"message": "ok"})
        w.emit("log", {"message": "ok2"})
    with open(path, "ab") as f:
        f.write(b'{"v": 1, "seq": 2, "type": "lo')
    events = read_events(path)
    assert [e["seq"] for e in events] == [0, 1]


def test_it_continues_seq_on_resume_and_cuts_a_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path, attempt=1) as w:
        for i in range(3):
            w.emit("metrics", {"i": i}, step=i)
    with open(path, "ab") as f:
        f.write(b'{"v": 1, "seq": 3, "ty')  # the crash
    with EventWriter(path, attempt=2) as w:
        assert w.next_seq == 3
        w.emit("log", {"message": "resumed"})
    events = read_events(path)
    assert [e["seq"] for e in events] == [0, 1, 2, 3]
    assert events[-1]["attempt"] == 2
    # Every line of the file parses: the torn fragment was cut, not left in the middle.
    for line in path.read_text().splitlines():
        json.loads(line)


def test_heartbeats_go_to_their_own_file_not_into_the_stream(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path, attempt=2)
    w.step = 5
    w.start_heartbeat(interval=0.05)
    beat_file = tmp_path / "heartbeat.json"
    deadline = time.time() + 10
    first = None
    while time.time() < deadline:
        if beat_file.exists():
            first = first or json.loads(beat_file.read_text())
            if json.loads(beat_file.read_text())["time"] > first["time"]:
                break
        time.sleep(0.02)
    w.emit("log", {"message": "still contiguous"})
    w.close()
    beat = json.loads(beat_file.read_text())
    assert beat["time"] > first["time"], "the heartbeat file is rewritten, not written once"
    assert beat["step"] == 5 and beat["attempt"] == 2 and beat["pid"] > 0 and beat["uptime_s"] >= 0
    events = read_events(path)
    assert [e["type"] for e in events] == ["log"]  # nothing else in the stream
    assert not list(tmp_path.glob(".heartbeat.*"))  # written atomically: no temporary left


def test_a_disabled_writer_writes_nothing(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path, enabled=False)
    assert w.emit("log", {"message": "rank 1"}) is None
    w.close()
    assert not path.exists()


def test_read_events_of_a_missing_file_is_empty(tmp_path):
    assert read_events(tmp_path / "nope.jsonl") == []


def test_a_writer_stops_once_another_attempt_claims_the_folder(tmp_path):
    from spell import rundir
    from spell.events import Superseded

    path = tmp_path / "events.jsonl"
    with EventWriter(path, attempt=1) as w:
        w.emit("log", {"message": "mine"})
        rundir.claim(tmp_path, 2)  # the worker started attempt 2 here
        with pytest.raises(Superseded):
            w.emit("log", {"message": "not any more"})
    assert [e["payload"]["message"] for e in read_events(path)] == ["mine"]
