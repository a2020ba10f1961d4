"""The RLVR baseline: the responder alone, rule rewards, a fixed QA file that must not be one of
the run's evaluation sets."""

from __future__ import annotations

import functools
import json
import shutil

import pytest
import torch

from spell.config import with_overrides
from spell.engines.hf import HFEngine
from spell.evaluation import BadInput
from spell.loss import policy_loss
from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.rlvr import RLVRStep, read_rlvr_set
from spell.trainers.base import TrainerSettings
from spell.trainers.torch_trainer import TorchTrainer
from tests.spell.scripted_engine import ScriptedEngine
from tests.spell.test_selfplay import SAMPLE_FIELDS, Recording, tiny_config


@pytest.fixture(scope="module")
def tiny_path():
    return prepare_model(TINY_RANDOM)


@pytest.fixture
def qa_file(tmp_path):
    """LongBench QA JSON lines; the scripted responder's right answer is "Harrowmere"."""
    path = tmp_path / "train_qa.jsonl"
    with open(path, "w") as f:
        for i in range(4):
            f.write(json.dumps({
                "_id": f"q{i}", "input": f"Which town did ferry {i} serve?", "answers": ["Harrowmere"],
                "context": f"Ferry {i} ran from Tollbury to Harrowmere every morning. " * 3,
                "length": 30, "dataset": "hotpotqa", "language": "en", "all_classes": None,
            }) + "\n")
    return path


def rlvr_config(tiny_path, qa_file, **overrides):
    return tiny_config(tiny_path, **{
        "selfplay.mode": "rlvr", "selfplay.rlvr_set": str(qa_file), "selfplay.questions_per_task": 2,
        "selfplay.batch_groups": 2, "optim.lr": 1e-3, **overrides,
    })


def test_the_file_is_read_and_refused_when_it_is_an_evaluation_set(tiny_path, qa_file, tmp_path):
    cfg = rlvr_config(tiny_path, qa_file)
    items = read_rlvr_set(cfg)
    assert [it.id for it in items] == ["q0", "q1", "q2", "q3"] and items[0].task == "doc_general_qa"
    # the same file as an evaluation set
    with pytest.raises(BadInput, match="is the evaluation set"):
        read_rlvr_set(with_overrides(cfg, {"eval.sets": [str(qa_file)]}))
    # the same bytes under another name
    copy = tmp_path / "hotpotqa_test.jsonl"
    shutil.copy(qa_file, copy)
    with pytest.raises(BadInput, match="is the evaluation set"):
        read_rlvr_set(with_overrides(cfg, {"eval.sets": [str(copy)]}))
    # another set is fine
    other = tmp_path / "other.jsonl"
    other.write_text(qa_file.read_text().replace("Harrowmere", "Tollbury"))
    assert len(read_rlvr_set(with_overrides(cfg, {"eval.sets": [str(other)]}))) == 4


def test_a_missing_or_unusable_file_is_a_clear_error(tiny_path, qa_file, tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        read_rlvr_set(rlvr_config(tiny_path, tmp_path / "absent.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": 1, "question": "no format"}\n')
    with pytest.raises(BadInput, match="selfplay.rlvr_set"):
        read_rlvr_set(rlvr_config(tiny_path, bad))
    # no item of a task with a positive weight
    cfg = rlvr_config(tiny_path, qa_file, **{"tasks.mix": {"doc_mc": 1.0}})
    with pytest.raises(BadInput, match="no item of a task"):
        read_rlvr_set(cfg)


def test_an_rlvr_step_trains_the_responder_alone_on_rule_rewards(tiny_path, qa_file):
    cfg = rlvr_config(tiny_path, qa_file)
    model, tok = load_model(tiny_path)
    engine = Recording(ScriptedEngine(HFEngine(model, tok), tok), tok)
    settings = TrainerSettings.from_run_config(cfg, pad_token_id=tok.pad_token_id)
    trainer = TorchTrainer(model, functools.partial(policy_loss, clip=cfg.loss.clip), settings)
    step = RLVRStep(cfg, engine, trainer, tok, read_rlvr_set(cfg), 8192)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = step.step(1)
    m = result.metrics
    assert m["mode"] == "rlvr"
    # 2 items x G = 4 rollouts, the scripted responder right on even token sums
    assert m["responder"]["groups"] == 2 and len(result.samples) == 8
    assert m["responder"]["varied_groups"] >= 1 and result.trained
    assert m["batch"]["sequences"] == {"questioner": 0, "responder": 4 * m["batch"]["responder_groups"], "verifier": 0}
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    for s in result.samples:
        assert SAMPLE_FIELDS <= set(s)
        assert s["rule_score"] in (0.0, 1.0) and s["rewards"]["responder"] == s["rule_score"]
        assert s["reference"] == "Harrowmere" and s["votes"] == [] and s["verdict"] == "SKIPPED"
        assert s["rule_score"] == (1.0 if s["response"].endswith("Harrowmere") else 0.0)
    assert m["reward"]["responder"] == pytest.approx(sum(s["rule_score"] for s in result.samples) / 8)
    # responder prompts over the items' contexts, nothing else: no questioner, grounding or verifier
    assert len(engine.prompts) == 2
    assert all("Ferry" in p and "Which town did ferry" in p and "Read the documents" in p for p in engine.prompts)
