"""The training loop: 2 steps through the CLI, resume determinism, pause (SIGUSR1) and cancel (SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spell.engines.hf import HFEngine
from spell.events import SCHEMA_VERSION, read_events
from spell.models import TINY_RANDOM, prepare_model
from spell.train import EXIT_STARVED, TrainOptions, resolve_config, train
from tests.spell.scripted_engine import ScriptedEngine
from tests.spell.test_selfplay import SCRIPTED_RECORDS, tiny_corpus_records

ROOT = Path(__file__).resolve().parents[2]
TINY_SETTINGS = [
    "tasks.docs_per_question=2", "selfplay.questions_per_task=1", "selfplay.group_size=2",
    "selfplay.verifier_samples=2", "selfplay.batch_groups=2", "selfplay.max_generation_batches=1",
    "sampling.max_response_tokens=4", "memory.new_docs_per_round=1", "eval.at_start=false",
    "checkpoint.every_steps=1", "warmup.examples_per_role=2", "warmup.verifier_examples=2",
]


@pytest.fixture(scope="module")
def tiny_path():
    return prepare_model(TINY_RANDOM)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    with open(path, "w") as f:
        for r in tiny_corpus_records():
            f.write(json.dumps({"id": r.id, "text": r.text, "title": r.title, "cluster": r.cluster, "numeric": r.numeric}) + "\n")
    return path


def spell_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "spell", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def train_args(tiny_path, corpus, out, steps, *extra, progress=("--no-progress",)):
    sets = [a for s in TINY_SETTINGS + [f"run.steps={steps}"] for a in ("--set", s)]
    return spell_cmd("train", "--preset", "cpu-demo", "--model", str(tiny_path), "--corpus", str(corpus),
                     "--out", str(out), *progress, *sets, *extra)


def test_two_steps_through_the_cli(tiny_path, corpus, tmp_path):
    out = tmp_path / "run"
    # stderr is a pipe here, as in a worker's log: progress comes as lines (every phase, with 0 s).
    proc = subprocess.run(train_args(tiny_path, corpus, out, 2, "--attempt", "1", progress=("--log-every", "0")),
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("spell: step ")]
    assert any(line.startswith("spell: step 1, questioner: ") for line in lines), proc.stderr[-3000:]
    assert any(line.startswith("spell: step 2, questioner: ") and line.endswith("done") for line in lines)
    assert "spell: step 2/2 done, r_res=" in proc.stderr  # a line a step, not a bar's redraws
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["steps"] == 2 and config["model"]["path"] == str(tiny_path)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == config["run"]["seed"] and len(prov["corpus"]["sha256"]) == 64
    assert prov["prompt_version"] and prov["packages"]["torch"]
    events = read_events(out / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert all(e["v"] == SCHEMA_VERSION and e["attempt"] == 1 for e in events)
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [e["step"] for e in metrics] == [1, 2]
    assert {"reward", "questioner", "responder", "verifier", "time", "curriculum", "memory"} <= set(metrics[0]["payload"])
    samples = [e for e in events if e["type"] == "sample"]
    assert samples and {e["step"] for e in samples} == {1, 2}
    assert all("question" in e["payload"] and "task" in e["payload"] for e in samples)
    checkpoints = [e for e in events if e["type"] == "checkpoint"]
    assert [e["step"] for e in checkpoints] == [1, 2]
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-000002"
    assert (out / "checkpoints" / "step-000002" / "model" / "config.json").is_file()
    assert events[-1]["type"] == "log" and events[-1]["payload"]["message"] == "finished"


def _scripted(model, tokenizer, cfg):
    return ScriptedEngine(HFEngine(model, tokenizer), tokenizer)


def _run(tiny_path, corpus, out, steps, resume=False, attempt=1, **extra):
    overrides = dict(s.split("=", 1) for s in TINY_SETTINGS)
    overrides = {k: json.loads(v) for k, v in overrides.items()}
    overrides.update({"run.steps": steps, "optim.lr": 1e-3, "sampling.max_response_tokens": 6, "selfplay.group_size": 4,
                      **SCRIPTED_RECORDS, **extra})
    cfg = resolve_config(config_path=None, preset_name="cpu-demo", model=str(tiny_path), overrides=overrides)
    code = train(cfg, TrainOptions(corpus=corpus, out=out, resume=resume, attempt=attempt, progress=False), make_engine=_scripted)
    assert code == 0
    return read_events(out / "events.jsonl")


def _comparable(event):
    p = event["payload"]
    return {k: v for k, v in p.items() if k not in ("time", "throughput")}


def test_resume_after_step_k_gives_the_same_step_k_plus_1(tiny_path, corpus, tmp_path):
    straight = _run(tiny_path, corpus, tmp_path / "a", steps=2)
    _run(tiny_path, corpus, tmp_path / "b", steps=1)
    resumed = _run(tiny_path, corpus, tmp_path / "b", steps=2, resume=True, attempt=2)
    want = [e for e in straight if e["type"] == "metrics" and e["step"] == 2]
    got = [e for e in resumed if e["type"] == "metrics" and e["step"] == 2]
    assert len(want) == len(got) == 1
    assert want[0]["payload"]["batch"]["updated"] == 1, "step 1 and 2 trained, so weights + optimizer matter"
    assert _comparable(got[0]) == _comparable(want[0])
    assert got[0]["attempt"] == 2
    samples = lambda evs: [e["payload"]["response"] for e in evs if e["type"] == "sample" and e["step"] == 2]  # noqa: E731
    assert samples(resumed) == samples(straight)
    # The resumed attempt continued the same file's numbering.
    assert [e["seq"] for e in resumed] == list(range(len(resumed)))
    assert any(e["type"] == "log" and e["payload"]["message"] == "resumed from step 1" for e in resumed)


def test_a_resume_on_another_number_of_processes_is_refused_before_anything_loads(tiny_path, corpus, tmp_path,
                                                                                 monkeypatch):
    from spell import checkpoint as ckpt
    from spell.train import BadInput

    _run(tiny_path, corpus, tmp_path / "run", steps=1)
    saved = ckpt.load_checkpoint(tmp_path / "run" / "checkpoints")
    assert saved.state.extra["world_size"] == 1  # written into every checkpoint

    monkeypatch.setenv("WORLD_SIZE", "8")
    overrides = {k: json.loads(v) for k, v in dict(s.split("=", 1) for s in TINY_SETTINGS).items()}
    cfg = resolve_config(config_path=None, preset_name="cpu-demo", model=str(tiny_path), overrides=overrides)
    options = TrainOptions(corpus=corpus, out=tmp_path / "run", resume=True, attempt=2, progress=False)
    # several processes train only under DeepSpeed (the torch trainer cannot average ranks' gradients)
    with pytest.raises(BadInput, match=r"8 processes train one run only under trainer.backend = deepspeed"):
        train(cfg, options, make_engine=_scripted)
    # ... and, for now, with one vLLM engine per rank (no tensor-parallel groups of ranks)
    tensor_parallel = resolve_config(config_path=None, preset_name="cpu-demo", model=str(tiny_path), overrides={
        **overrides, "trainer.backend": "deepspeed", "engine.name": "vllm", "engine.tensor_parallel": 2})
    with pytest.raises(BadInput, match=r"engine.tensor_parallel = 2 with 8 training processes is not supported yet"):
        train(tensor_parallel, options, make_engine=_scripted)
    cfg = resolve_config(config_path=None, preset_name="cpu-demo", model=str(tiny_path),
                         overrides={**overrides, "trainer.backend": "deepspeed"})
    with pytest.raises(BadInput, match=r"written by 1 process\(es\) and this attempt has 8: resume with 1"):
        train(cfg, options, make_engine=_scripted)


def test_a_time_budget_stops_before_a_step_that_would_not_fit_and_saves(tiny_path, corpus, tmp_path):
    # 0.01 minutes: the first step runs (nothing measured yet) and takes longer than the budget
    # (no warm-up: it would spend the budget before the first step).
    events = _run(tiny_path, corpus, tmp_path / "run", steps=5, **{"run.time_budget_minutes": 0.01,
                                                                   "checkpoint.every_steps": 0, "warmup.enabled": False})
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1]
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [1]
    logs = [e["payload"] for e in events if e["type"] == "log"]
    assert any(p["message"] == "time budget reached" and p["steps_done"] == 1 for p in logs)
    assert logs[-1]["message"] == "finished" and logs[-1]["reason"] == "time budget"


def test_five_steps_in_a_row_without_a_question_fail_the_run_clearly(tiny_path, corpus, tmp_path, capsys):
    # A prompt limit no document set fits: every step skips every cluster.
    overrides = {k: json.loads(v) for k, v in (x.split("=", 1) for x in TINY_SETTINGS)}
    overrides.update({"run.steps": 8, "sampling.max_prompt_tokens": 40, **SCRIPTED_RECORDS})
    cfg = resolve_config(config_path=None, preset_name="cpu-demo", model=str(tiny_path), overrides=overrides)
    out = tmp_path / "run"
    code = train(cfg, TrainOptions(corpus=corpus, out=out, progress=False), make_engine=_scripted)
    assert code == EXIT_STARVED
    events = read_events(out / "events.jsonl")
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1, 2, 3, 4, 5]
    warnings = [e["payload"]["message"] for e in events if e["type"] == "log" and e["payload"]["level"] == "warning"]
    assert warnings == [f"step {k} had no question" for k in range(1, 6)]
    (error,) = [e["payload"] for e in events if e["type"] == "error"]
    assert error["kind"] == "starved" and "steps 1-5" in error["message"] and "memory.overflow" in error["message"]
    assert "spell train: error: no question in 5 steps" in capsys.readouterr().err


def _wait_for(path, predicate, timeout=900):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(predicate(e) for e in read_events(path)):
            return True
        time.sleep(0.5)
    return False


def test_sigusr1_checkpoints_and_pauses_sigterm_cancels(tiny_path, corpus, tmp_path):
    out = tmp_path / "run"
    # More steps than either process can finish before its signal: a tiny-model step can take a
    # fraction of a second, and a run that ends on its own exits 0 whatever was sent.
    proc = subprocess.Popen(train_args(tiny_path, corpus, out, 100_000, "--set", "checkpoint.every_steps=0"), cwd=ROOT,
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(out / "events.jsonl", lambda e: e["type"] == "log" and e["payload"]["message"] == "started")
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=900) == 0, proc.stderr.read()[-2000:]
    finally:
        proc.kill() if proc.poll() is None else None
    events = read_events(out / "events.jsonl")
    assert events[-1]["type"] == "log" and events[-1]["payload"]["message"] == "paused"
    paused_at = events[-1]["step"]
    assert paused_at >= 1
    assert (out / "checkpoints" / "latest").read_text().strip() == f"step-{paused_at:06d}"

    proc = subprocess.Popen(train_args(tiny_path, corpus, out, 100_000, "--resume", "--attempt", "2"), cwd=ROOT,
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(out / "events.jsonl", lambda e: e["attempt"] == 2 and e["type"] == "log")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=300) == 143
    finally:
        proc.kill() if proc.poll() is None else None
    events = read_events(out / "events.jsonl")
    assert events[-1]["payload"]["message"] == "cancelled" and events[-1]["attempt"] == 2
    assert [e["seq"] for e in events] == list(range(len(events)))


@pytest.mark.slow
@pytest.mark.timeout(900)  # a real SmolLM2 warm-up, step and checkpoint: about 3 minutes idle, more when shared
def test_smollm2_cpu_demo_step_through_the_cli(tmp_path):
    from spell.models import SMOLLM2

    model = prepare_model(SMOLLM2)
    corpus = ROOT / "samples" / "corpus" / "sample.jsonl"
    out = tmp_path / "run"
    # cpu-demo as it ships (grounded grammars, quality filter, QA-only verifier), made as small
    # as still proves it: one step, one question per task, two rollouts and two votes each.
    small = ["run.steps=1", "eval.at_start=false", "selfplay.questions_per_task=1", "selfplay.group_size=2",
             "selfplay.verifier_samples=2", "selfplay.batch_groups=3", "sampling.questioner_max_tokens=80",
             "sampling.responder_max_tokens=16", "warmup.examples_per_role=1",
             "warmup.verifier_examples=1"]
    proc = subprocess.run(
        spell_cmd("train", "--preset", "cpu-demo", "--model", str(model), "--corpus", str(corpus), "--out", str(out),
                  "--no-progress", *[a for s in small for a in ("--set", s)]),
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = read_events(out / "events.jsonl")
    (metrics,) = [e for e in events if e["type"] == "metrics"]
    assert metrics["payload"]["questioner"]["samples"] == 3
    assert 0 <= metrics["payload"]["questioner"]["question_quality"] <= 1
    samples = [e["payload"] for e in events if e["type"] == "sample"]
    # the grammar makes every record readable: a question, and evidence quoted from the documents
    assert samples and all(s["question"] and s["evidence"] for s in samples)
    # the warm-up ran before step 1, on an example of each role
    (warmed,) = [e["payload"] for e in events if e["type"] == "log" and e["payload"]["message"] == "warm-up finished"]
    assert warmed["examples"] == {"questioner": 1, "responder": 1, "verifier": 1} and warmed["optimizer_steps"] == 1
    assert events[-1]["payload"]["message"] == "finished"


def test_a_process_of_a_superseded_attempt_stops_before_its_next_write(tiny_path, corpus, tmp_path):
    """The fence (spell/rundir.py): the worker claimed the folder for attempt 2 while attempt 1 still
    runs. Attempt 1 stops at its next event or checkpoint and writes nothing more."""
    from spell import rundir
    from spell.events import Superseded

    out = tmp_path / "run"
    rundir.claim(out, 1)
    events = _run(tiny_path, corpus, out, 1)
    assert events and events[-1]["payload"]["message"] == "finished"
    lines_before = (out / "events.jsonl").read_bytes()

    rundir.claim(out, 2)  # attempt 2 took over; attempt 1 is started again (or still running)
    with pytest.raises(Superseded):
        _run(tiny_path, corpus, out, 2, resume=True, attempt=1)
    assert (out / "events.jsonl").read_bytes() == lines_before  # not a line more
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-000001"

    proc = subprocess.run(train_args(tiny_path, corpus, out, 2, "--resume", "--attempt", "1"), cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 4 and "belongs to attempt 2" in proc.stderr, proc.stderr[-2000:]
    assert (out / "events.jsonl").read_bytes() == lines_before
