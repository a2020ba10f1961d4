"""Text the database cannot store (issue 16): a NUL in a model output (PostgreSQL text and jsonb refuse
\\u0000) or a lone surrogate is stored escaped by the one rule, webapp.storable, never dropped, and the
run goes on. Runs on whichever database the suite uses (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

import pytest

from spell.events import EventWriter
from webapp.accounts.models import Team
from webapp.runs.models import MetricPoint, ModelEntry, Run, RunEvent, Sample
from webapp.storable import NUL_MARK, storable, storable_text
from workers.relay import EventRelay

from tests.webapp.runs.factories import make_corpus, make_run


def test_the_rule_marks_nul_and_lone_surrogates_and_leaves_other_text_alone():
    assert storable_text("a\x00b") == f"a{NUL_MARK}b" == "a\u2400b"
    assert storable_text("x\ud800y") == "x\ufffdy"
    assert storable_text("plain, ünïcode 😀") == "plain, ünïcode 😀"
    assert storable({"k\x00": ["v\x00", 1, None, {"n": "\x00"}], "ok": 2.5}) == {
        "k\u2400": ["v\u2400", 1, None, {"n": "\u2400"}], "ok": 2.5}


@pytest.fixture
def run(db, settings, tmp_path):
    settings.RUNS_ROOT = tmp_path / "runs"
    team = Team.objects.create(name="Lab", slug="lab")
    run = make_run(team, make_corpus(team), ModelEntry.objects.create(name="tiny", path="var/models/tiny"),
                   state=Run.State.RUNNING)
    run.path.mkdir(parents=True)
    Run.objects.filter(pk=run.pk).update(attempt=1)
    return run


def test_a_nul_in_model_output_is_stored_escaped_and_the_relay_goes_on(run):
    with EventWriter(run.path / "events.jsonl", attempt=1) as w:  # json.dumps writes "\u0000"
        w.emit("sample", {"task": "doc_general_qa", "question": "what\x00?", "reference": "a\x00",
                          "response": "b\x00\x00c", "verdict": "no\x00", "majority": 0, "rule_score": 0.0,
                          "rewards": {"responder\x00": 0.0}, "votes": ["\x00"], "note\x00": "x\x00"}, step=1)
        w.emit("metrics", {"reward": {"responder\x00": 0.5}, "loss": 1.0}, step=1)
        w.emit("log", {"message": "stray \x00 in a log"}, step=1)
        w.emit("progress", {"phase": "responder", "done": 1, "total": 2, "note": "\x00"}, step=2)
        w.emit("metrics", {"loss": 0.5}, step=2)
    relay = EventRelay(run.pk, run.path / "events.jsonl", attempt=1)

    assert relay.poll() == 4  # every event stored (progress is kept on the run, not as a row)

    s = Sample.objects.get(run=run)
    assert (s.question, s.reference, s.response, s.verdict) == ("what␀?", "a␀", "b␀␀c", "no␀")
    assert s.rewards == {"responder␀": 0.0} and s.votes == ["␀"] and s.extra == {"note␀": "x␀"}
    assert RunEvent.objects.get(run=run, type="log").payload == {"message": "stray ␀ in a log"}
    assert set(MetricPoint.objects.filter(run=run).values_list("name", flat=True)) == {"reward.responder␀", "loss"}
    run.refresh_from_db()
    assert run.progress["responder"]["note"] == "␀"
    assert run.last_step == 2 and run.last_seq == 3


def test_a_nul_in_the_error_the_run_page_shows_is_stored_escaped(run, settings):
    from workers.supervisor import Supervisor

    Run.objects.filter(pk=run.pk).update(attempt=1)
    run.refresh_from_db()

    assert Supervisor(run).end(Run.State.FAILED, "crashed: \x00 in the log tail")

    run.refresh_from_db()
    assert (run.state, run.error) == (Run.State.FAILED, "crashed: ␀ in the log tail")
