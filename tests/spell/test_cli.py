"""CLI: bad input exits 2 with one line on stderr and leaves OUT as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spell.cli import _parse_set
from spell.evaluation import BadInput
from spell.models import TINY_RANDOM, prepare_model
from tests.spell.test_selfplay import tiny_corpus_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_path():
    return prepare_model(TINY_RANDOM)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": r.id, "text": r.text, "cluster": r.cluster, "numeric": r.numeric}) + "\n"
                            for r in tiny_corpus_records()))
    return path


@pytest.fixture
def out(tmp_path):
    """A run directory with earlier events that must survive every refusal."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "events.jsonl").write_text('{"v":1,"seq":0,"type":"log","step":0,"attempt":1,"time":1,"payload":{}}\n')
    return out


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "spell", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(proc, out, before, needle):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert snapshot(out) == before


def train(tiny_path, corpus, out, *extra):
    return run("train", "--preset", "cpu-demo", "--model", str(tiny_path), "--corpus", str(corpus), "--out", str(out), *extra)


def test_too_few_documents_for_m(tiny_path, corpus, out):
    before = snapshot(out)
    proc = train(tiny_path, corpus, out, "--set", "tasks.docs_per_question=5")  # clusters hold 4
    assert_refused(proc, out, before, "docs_per_question")


def test_model_too_short_for_the_context(tiny_path, corpus, out):
    before = snapshot(out)
    proc = train(tiny_path, corpus, out, "--set", "sampling.max_prompt_tokens=8192", "--set", "tasks.docs_per_question=2")
    assert_refused(proc, out, before, "8192 positions")


def test_bad_config_value(tiny_path, corpus, out):
    before = snapshot(out)
    assert_refused(train(tiny_path, corpus, out, "--set", "selfplay.group_size=1"), out, before, "selfplay.group_size")
    assert_refused(train(tiny_path, corpus, out, "--set", "nope"), out, before, "section.key=value")
    assert_refused(train(tiny_path, corpus, out, "--set", "selfplay.colour=3"), out, before, "unknown key")


def test_bad_config_file_and_corpus(tiny_path, corpus, out, tmp_path):
    before = snapshot(out)
    bad = tmp_path / "run.toml"
    bad.write_text("[selfplay\n")
    proc = run("train", "--config", str(bad), "--corpus", str(corpus), "--out", str(out))
    assert_refused(proc, out, before, "not valid TOML")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "text": "x"}\n')
    assert_refused(train(tiny_path, broken, out), out, before, "line 1")
    assert_refused(train(tiny_path, tmp_path / "missing.jsonl", out), out, before, "does not exist")


def test_missing_model(corpus, out, tmp_path):
    before = snapshot(out)
    proc = run("train", "--preset", "cpu-demo", "--model", str(tmp_path / "nomodel"), "--corpus", str(corpus), "--out", str(out),
               "--set", "tasks.docs_per_question=2")
    assert_refused(proc, out, before, "does not exist")


def test_the_rlvr_baseline_refuses_an_evaluation_set_and_a_missing_judge(tiny_path, corpus, out, tmp_path):
    before = snapshot(out)
    qa = ROOT / "samples" / "eval" / "longbench_qa_sample.jsonl"
    rlvr = ["--set", "tasks.docs_per_question=2", "--set", "selfplay.mode='rlvr'", "--set", f"selfplay.rlvr_set='{qa}'"]
    # the same path: a config error
    proc = train(tiny_path, corpus, out, *rlvr, "--set", f"eval.sets=['{qa}']")
    assert_refused(proc, out, before, "is one of eval.sets")
    # the same bytes under another name: refused when the files are read, before OUT is touched
    copy = tmp_path / "held_out.jsonl"
    copy.write_bytes(qa.read_bytes())
    proc = train(tiny_path, corpus, out, *rlvr, "--set", f"eval.sets=['{copy}']")
    assert_refused(proc, out, before, "is the evaluation set")
    # an external verifier whose folder does not exist
    proc = train(tiny_path, corpus, out, "--set", "tasks.docs_per_question=2",
                 "--set", f"selfplay.verifier_model='{tmp_path / 'nojudge'}'")
    assert_refused(proc, out, before, "does not exist")


def test_unreadable_checkpoint(tiny_path, corpus, out):
    step = out / "checkpoints" / "step-000003"
    (step / "model").mkdir(parents=True)
    (step / "model" / "config.json").write_text("{}")
    (step / "state.json").write_text("{broken")
    (out / "checkpoints" / "latest").write_text("step-000003\n")
    before = snapshot(out)
    proc = train(tiny_path, corpus, out, "--resume", "--set", "tasks.docs_per_question=2")
    assert_refused(proc, out, before, "cannot resume")


def test_eval_bad_set_file(tiny_path, tmp_path):
    bad = tmp_path / "set.json"
    bad.write_text('[{"what": 1}]')
    proc = run("eval", "--model", str(tiny_path), "--eval-set", str(bad), "--k", "1", "--max-input-tokens", "2048")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "unknown eval-set format" in proc.stderr


def test_parse_set_reads_toml_values():
    assert _parse_set(["a.b=4", "a.c=0.5", "a.d=true", "a.e=[1024, 2048]", "a.f=var/models/x", 'a.g="s"']) == {
        "a.b": 4, "a.c": 0.5, "a.d": True, "a.e": [1024, 2048], "a.f": "var/models/x", "a.g": "s"}
    with pytest.raises(BadInput):
        _parse_set(["novalue"])
