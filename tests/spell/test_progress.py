"""Progress inside a step (spell/progress.py): throttled events, the terminal's lines, and a real
tiny run whose events.jsonl holds a progress event per phase."""

import io
import json

import pytest

from spell import progress as progress_mod
from spell.events import EventWriter, read_events
from spell.progress import Progress, describe, format_seconds
from tests.spell.test_train import ROOT, _run, corpus, tiny_path  # noqa: F401 - fixtures


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_phase_reports_its_first_and_last_and_at_most_one_event_per_interval(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", clock)
    with EventWriter(tmp_path / "events.jsonl") as w:
        w.step = 3
        reporter = Progress(w, console="off", interval=0.5)
        with reporter.phase("responder", 10) as phase:
            for _ in range(10):
                clock.now += 0.1  # ten parts in one second: two throttled reports at most
                phase.advance(1, tokens=7)
    events = [e for e in read_events(tmp_path / "events.jsonl") if e["type"] == "progress"]
    payloads = [e["payload"] for e in events]
    assert payloads[0]["done"] == 0 and payloads[0]["state"] == "running"  # the phase started
    assert payloads[-1] == {**payloads[-1], "done": 10, "total": 10, "state": "done", "eta_s": 0.0, "tokens": 70}
    assert 3 <= len(events) <= 4, [p["done"] for p in payloads]
    assert all(e["step"] == 3 for e in events)  # the writer's step: the step in progress
    running = [p for p in payloads[1:-1] if p["done"] < p["total"]]
    assert running and all(p["eta_s"] is not None and p["eta_s"] > 0 for p in running)


def test_the_eta_is_elapsed_per_part_times_parts_left(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", clock)
    phase = Progress(None, console="off").phase("eval", 8, "items")
    clock.now += 20
    phase.advance(2)
    assert phase.payload()["eta_s"] == 60.0  # 10 s an item, 6 left


def test_in_a_log_it_prints_a_line_every_few_seconds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", clock)
    stream = io.StringIO()
    reporter = Progress(None, console="lines", log_every=5.0, interval=0.0, stream=stream)
    phase = reporter.phase("responder", 100, step=2)
    for _ in range(100):
        clock.now += 0.5  # 50 s in all: about one line each 5 s
        phase.advance(1, tokens=3)
    phase.finish()
    lines = stream.getvalue().splitlines()
    assert 9 <= len(lines) <= 11, lines
    assert lines[0].startswith("spell: step 2, responder: ") and "ETA" in lines[0]


def test_a_phase_on_a_tty_gets_a_bar_that_goes_away():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    reporter = Progress(None, stream=stream)
    assert reporter.console == "bars"
    with reporter.phase("verifier", 4) as phase:
        phase.advance(4)
    assert "verifier" in stream.getvalue()


def test_describe_reads_as_a_sentence():
    line = describe({"phase": "responder", "done": 12, "total": 36, "unit": "sequences", "tokens": 1234,
                     "eta_s": 40.0, "state": "running"}, step=3)
    assert line == "step 3, responder: 12/36 sequences, 1,234 tokens, ETA 40 s"
    assert format_seconds(125) == "2 min 05 s" and format_seconds(3725) == "1 h 02 min"


@pytest.fixture
def small_eval_set(tmp_path):
    lines = (ROOT / "samples" / "eval" / "heldout_towns_qa.jsonl").read_text().splitlines()[:3]
    path = tmp_path / "towns.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_real_tiny_run_reports_every_phase_of_a_step_and_its_evaluation(tmp_path, tiny_path, corpus, small_eval_set):
    out = tmp_path / "run"
    events = _run(tiny_path, corpus, out, 1, **{"eval.at_start": True, "eval.sets": [str(small_eval_set)],
                                               "eval.samples": 2, "eval.max_input_tokens": 512})
    progress = [e for e in events if e["type"] == "progress"]
    phases = {e["payload"]["phase"] for e in progress}
    assert {"questioner", "responder", "verifier", "update", "eval"} <= phases, phases
    for phase in phases:
        mine = [e["payload"] for e in progress if e["payload"]["phase"] == phase]
        assert mine[-1]["state"] == "done" and mine[-1]["done"] == mine[-1]["total"] > 0, (phase, mine[-1])
    # The step's generation is reported while the step is in progress: before its metrics event.
    metrics_at = next(i for i, e in enumerate(events) if e["type"] == "metrics")
    assert any(e["type"] == "progress" and e["payload"]["phase"] == "responder" for e in events[:metrics_at])
    evals = [e for e in progress if e["payload"]["phase"] == "eval"]
    assert evals[0]["step"] == 0 and evals[0]["payload"]["unit"] == "items"
    assert json.loads((out / "heartbeat.json").read_text())["pid"] > 0


def test_the_run_page_line_names_the_step_in_progress_and_the_latest_phase():
    from spell.progress import summary

    phases = {
        "questioner": {"phase": "questioner", "done": 4, "total": 4, "unit": "sequences", "state": "done", "step": 4, "time": 10.0},
        "responder": {"phase": "responder", "done": 12, "total": 36, "unit": "sequences", "tokens": 1234, "eta_s": 40.0,
                      "state": "running", "step": 4, "time": 12.0},
    }
    assert summary(phases) == "Step 4 in progress: responder 12/36 sequences, 1,234 tokens, ETA 40 s"
    baseline = {"eval": {"phase": "eval", "done": 37, "total": 200, "unit": "items", "eta_s": 200.0, "state": "running",
                         "step": 0, "time": 1.0}}
    assert summary(baseline) == "Baseline evaluation (step 0): eval 37/200 items, ETA 3 min 20 s"
    warmup = {"warmup": {"phase": "warmup", "done": 16, "total": 96, "unit": "sequences", "eta_s": 90.0, "state": "running",
                         "step": 0, "time": 2.0}}
    assert summary(warmup) == "Warm-up before step 1: warmup 16/96 sequences, ETA 1 min 30 s"
    assert summary({}) == ""
