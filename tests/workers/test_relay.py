"""workers.relay.EventRelay: parse, skip garbage, run-wide seq, idempotent storage, derived rows,
live sends to the run's group (at most K samples per step), superseded events."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from spell.events import EventWriter
from webapp.accounts.models import Team
from webapp.runs.models import MetricPoint, ModelEntry, Run, RunEvent, Sample
from workers.relay import EventRelay, group_name

from tests.webapp.runs.factories import make_corpus, make_run


@pytest.fixture
def run(db, settings, tmp_path):
    settings.RUNS_ROOT = tmp_path / "runs"
    team = Team.objects.create(name="Lab", slug="lab")
    entry = ModelEntry.objects.create(name="tiny", path="var/models/tiny")
    run = make_run(team, make_corpus(team), entry, state=Run.State.RUNNING)
    run.path.mkdir(parents=True)
    Run.objects.filter(pk=run.pk).update(attempt=1)
    return run


def write(run, events, attempt=1):
    with EventWriter(run.path / "events.jsonl", attempt=attempt) as w:
        for type_, step, payload in events:
            w.emit(type_, payload, step=step)


def sample(i):
    return {"task": "doc_mc", "question": f"q{i}", "reference": "B", "response": "B", "verdict": "yes",
            "majority": 1, "rule_score": 1.0, "rewards": {"responder": 1.0}, "votes": [1, 1, 0]}


def receive_all(channel):
    layer = get_channel_layer()
    out = []
    while True:
        try:
            out.append(async_to_sync(_receive)(layer, channel))
        except TimeoutError:
            return out


async def _receive(layer, channel):
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), 0.5)


def listen(run):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(run.pk), channel)
    return channel


def test_it_stores_events_with_contiguous_run_wide_seq_and_derives_rows(run):
    write(run, [("metrics", 1, {"reward": {"responder": 0.25}, "loss": 2.0}), ("sample", 1, sample(0)),
                ("eval", 1, {"longbench": {"mean@k": 0.3}}), ("log", 1, {"message": "hi"})])
    relay = EventRelay(run.pk, run.path / "events.jsonl", attempt=1)

    assert relay.poll() == 4

    assert list(RunEvent.objects.filter(run=run).values_list("seq", "type")) == [
        (0, "metrics"), (1, "sample"), (2, "eval"), (3, "log")]
    points = dict(MetricPoint.objects.filter(run=run).values_list("name", "value"))
    assert points == {"reward.responder": 0.25, "loss": 2.0, "eval.longbench.mean@k": 0.3}
    s = Sample.objects.get(run=run)
    assert (s.seq, s.step, s.task, s.question, s.verdict, s.rule_score, s.votes) == (1, 1, "doc_mc", "q0", "yes", 1.0, [1, 1, 0])
    assert s.split_votes is True and s.disagreement is False
    run.refresh_from_db()
    assert run.last_seq == 3 and run.last_step == 1
    assert run.events_offset == (run.path / "events.jsonl").stat().st_size


def test_it_skips_garbage_and_waits_for_a_torn_last_line(run):
    path = run.path / "events.jsonl"
    write(run, [("metrics", 1, {"loss": 1.0})])
    with open(path, "ab") as f:
        f.write(b"not json at all\n[1, 2]\n{\"type\": \"nonsense\"}\n{\"v\": 1, \"type\": \"log\", \"step\": 2, \"payload\": {\"mess")
    relay = EventRelay(run.pk, path, attempt=1)

    assert relay.poll() == 1
    assert relay.garbage_lines == 3
    with open(path, "ab") as f:
        f.write(b"age\": \"late\"}}\n")
    assert relay.poll() == 1

    assert list(RunEvent.objects.filter(run=run).values_list("seq", "type", "payload")) == [
        (0, "metrics", {"loss": 1.0}), (1, "log", {"message": "late"})]


def test_it_never_stores_an_event_twice_when_a_new_relay_starts(run):
    write(run, [("metrics", 1, {"loss": 1.0}), ("sample", 1, sample(0))])
    EventRelay(run.pk, run.path / "events.jsonl", attempt=1).poll()
    # A second relay (a restarted worker) continues from the stored offset, seq from the stored last seq.
    write(run, [("metrics", 2, {"loss": 0.5})])
    second = EventRelay(run.pk, run.path / "events.jsonl", attempt=1)

    assert second.poll() == 1
    assert second.poll() == 0

    assert list(RunEvent.objects.filter(run=run).values_list("seq", "step")) == [(0, 1), (1, 1), (2, 2)]
    assert Sample.objects.filter(run=run).count() == 1
    assert MetricPoint.objects.filter(run=run).count() == 2


def test_it_sends_events_to_the_run_group_with_at_most_k_samples_per_step(run):
    channel = listen(run)
    write(run, [("metrics", 1, {"loss": 1.0})] + [("sample", 1, sample(i)) for i in range(5)]
          + [("heartbeat", 1, {"uptime_s": 1})] + [("sample", 2, sample(i)) for i in range(3)])
    relay = EventRelay(run.pk, run.path / "events.jsonl", attempt=1, live_samples_per_step=2)

    relay.poll()

    messages = receive_all(channel)
    live = [e for m in messages if m["type"] == "run.events" for e in m["events"]]
    assert [(e["type"], e["step"]) for e in live] == [("metrics", 1), ("sample", 1), ("sample", 1), ("sample", 2), ("sample", 2)]
    assert [e["seq"] for e in live] == [0, 1, 2, 7, 8]
    assert Sample.objects.filter(run=run).count() == 8  # every triple is stored
    assert RunEvent.objects.filter(run=run, type="heartbeat").count() == 1


def test_it_sends_the_state_to_the_group(run):
    channel = listen(run)

    EventRelay.publish_state(run.pk)

    (message,) = receive_all(channel)
    assert message["type"] == "run.state"
    assert message["state"] == "RUNNING" and message["attempt"] == 1


def test_it_marks_an_earlier_attempts_steps_after_the_checkpoint_superseded(run):
    write(run, [("metrics", s, {"loss": float(s)}) for s in (1, 2, 3)] + [("sample", 3, sample(0))], attempt=1)
    EventRelay(run.pk, run.path / "events.jsonl", attempt=1).poll()

    n = EventRelay.mark_superseded(run.pk, attempt=2, after_step=2)
    write(run, [("metrics", 3, {"loss": 0.3})], attempt=2)
    EventRelay(run.pk, run.path / "events.jsonl", attempt=2).poll()

    assert n == 4  # the two step-3 events, the sample and the metric point
    assert list(RunEvent.objects.filter(run=run).values_list("seq", "attempt", "step", "superseded")) == [
        (0, 1, 1, False), (1, 1, 2, False), (2, 1, 3, True), (3, 1, 3, True), (4, 2, 3, False)]
    assert list(MetricPoint.objects.filter(run=run, superseded=False).order_by("step").values_list("step", "value")) == [
        (1, 1.0), (2, 2.0), (3, 0.3)]


def test_it_reads_a_replaced_file_from_the_top(run):
    write(run, [("metrics", 1, {"loss": 1.0}), ("metrics", 2, {"loss": 1.0})])
    EventRelay(run.pk, run.path / "events.jsonl", attempt=1).poll()
    (run.path / "events.jsonl").write_text(json.dumps({"v": 1, "seq": 0, "type": "log", "step": 0, "attempt": 2, "payload": {}}) + "\n")

    assert EventRelay(run.pk, run.path / "events.jsonl", attempt=2).poll() == 1
    assert RunEvent.objects.filter(run=run).count() == 3


def progress(phase, done, total):
    return {"phase": phase, "done": done, "total": total, "unit": "sequences", "tokens": done * 3,
            "elapsed_s": 1.0, "eta_s": 1.0, "state": "done" if done == total else "running"}


def test_progress_keeps_the_latest_per_phase_and_goes_live_without_a_seq(run):
    channel = listen(run)
    write(run, [("log", 1, {"message": "started"}), ("progress", 1, progress("questioner", 0, 4)),
                ("progress", 1, progress("questioner", 4, 4)), ("progress", 1, progress("responder", 2, 16)),
                ("sample", 1, sample(0))])
    relay = EventRelay(run.pk, run.path / "events.jsonl", attempt=1)

    assert relay.poll() == 2  # the log and the sample: progress is not a row

    row = Run.objects.get(pk=run.pk)
    assert list(RunEvent.objects.filter(run=run).values_list("seq", "type")) == [(0, "log"), (1, "sample")]
    assert set(row.progress) == {"questioner", "responder"}
    assert row.progress["questioner"]["done"] == 4 and row.progress["questioner"]["state"] == "done"
    assert row.progress["responder"] == {**progress("responder", 2, 16), "step": 1, "attempt": 1,
                                         "time": row.progress["responder"]["time"]}
    # The step in progress is not a finished step: only a metrics event ends one.
    assert row.last_step == 0
    assert row.state_message()["progress"] == row.progress
    messages = receive_all(channel)
    sent = [m["progress"] for m in messages if m["type"] == "run.progress"]
    assert len(sent) == 1 and sent[0]["responder"]["done"] == 2
    assert all("progress" not in [e["type"] for e in m.get("events", [])] for m in messages)

    # The next poll merges; the step's metrics finish it.
    write(run, [("progress", 1, progress("responder", 16, 16)), ("metrics", 1, {"loss": 1.0})])
    relay.poll()
    row.refresh_from_db()
    assert row.progress["responder"]["done"] == 16 and row.progress["questioner"]["done"] == 4
    assert row.last_step == 1


def test_a_new_attempt_drops_the_last_attempts_progress(run):
    write(run, [("progress", 3, progress("responder", 2, 16))])
    EventRelay(run.pk, run.path / "events.jsonl", attempt=1).poll()
    Run.objects.filter(pk=run.pk).update(attempt=2)
    write(run, [("progress", 3, progress("questioner", 1, 4))], attempt=2)
    EventRelay(run.pk, run.path / "events.jsonl", attempt=2).poll()
    row = Run.objects.get(pk=run.pk)
    assert set(row.progress) == {"questioner"} and row.current_progress()["questioner"]["attempt"] == 2
    Run.objects.filter(pk=run.pk).update(state=Run.State.CANCELLED)
    assert Run.objects.get(pk=run.pk).current_progress() == {}  # an ended run shows no work in progress
