"""The DeepSpeed trainer on CPU (gloo, fp32, one process without a launcher): it trains, and
ZeRO-2 gives the same updated weights as the plain torch trainer for the same batch."""

from __future__ import annotations

import pytest
import torch

from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.trainers.base import TrainerSettings
from spell.trainers.deepspeed_trainer import DeepSpeedTrainer
from spell.trainers.torch_trainer import TorchTrainer

from tests.spell.trainers.test_torch_trainer import reinforce_loss, toy_batch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_path():
    return prepare_model(TINY_RANDOM)


def settings(**overrides) -> TrainerSettings:
    # eps=1: Adam's update proportional to the gradient, so fp32 noise cannot flip its sign.
    base = dict(lr=1e-3, eps=1.0, grad_clip=1.0, pad_token_id=2)
    base.update(overrides)
    return TrainerSettings(**base)


def make(model_path, trainer_class, **overrides):
    torch.manual_seed(0)
    model, _ = load_model(model_path)
    return trainer_class(model, reinforce_loss, settings(**overrides), device="cpu")


@pytest.mark.parametrize("stage", [0, 2, 3])
def test_one_step_lowers_the_loss(model_path, stage):
    trainer = make(model_path, DeepSpeedTrainer, zero_stage=stage)
    first = trainer.train_step(toy_batch())
    second = trainer.train_step(toy_batch())
    assert second["loss"] < first["loss"]
    assert first["grad_norm"] > 0
    # The whole model's weights, gathered from the partitions at ZeRO-3.
    weights = trainer.full_state_dict()
    assert weights["model.norm.weight"].shape == (64,)
    assert weights["model.embed_tokens.weight"].shape == (49152, 64)


def test_zero2_matches_the_torch_trainer(model_path):
    # Two micro-batches (budget 14 -> [9], [7, 5], [4]: three) exercise the accumulation boundary.
    plain = make(model_path, TorchTrainer, micro_batch_tokens=14)
    zero2 = make(model_path, DeepSpeedTrainer, zero_stage=2, micro_batch_tokens=14)
    a = plain.train_step(toy_batch())
    b = zero2.train_step(toy_batch())
    assert b["micro_batches"] == a["micro_batches"] == 3
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    zero2_params = dict(zero2.model.named_parameters())
    moved = 0.0
    for name, param in plain.model.named_parameters():
        assert torch.allclose(param, zero2_params[name], atol=1e-7), name
    fresh, _ = load_model(model_path)
    for name, param in fresh.named_parameters():
        moved = max(moved, float((param - zero2_params[name]).abs().max()))
    assert moved > 1e-5  # the step did change the weights


def test_zero2_state_round_trip(model_path, tmp_path):
    trainer = make(model_path, DeepSpeedTrainer, zero_stage=2)
    trainer.train_step(toy_batch())
    trainer.save_optimizer(tmp_path)
    snapshot = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    after_one = trainer.train_step(toy_batch())

    trainer.load_optimizer(tmp_path)
    assert trainer.steps_done == 1
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
    again = trainer.train_step(toy_batch())
    assert again["loss"] == pytest.approx(after_one["loss"], rel=1e-6)


def test_zero3_generates_with_whole_weights_and_keeps_training(model_path):
    """At ZeRO-3 the colocated engine generates inside the trainer's generation context (weights
    gathered once, hooks off): same greedy text as the unpartitioned model, and training goes on
    afterwards with its hooks back."""
    from spell.engines.base import SamplingParams
    from spell.engines.hf import HFEngine

    plain_model, tokenizer = load_model(model_path)
    zero3 = make(model_path, DeepSpeedTrainer, zero_stage=3)
    prompt = tokenizer("The river rose three metres overnight.")["input_ids"]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
    want = HFEngine(plain_model, tokenizer).generate([prompt], 2, greedy)[0]
    engine = HFEngine(zero3.model, tokenizer, generation_context=zero3.generation_context)
    got = engine.generate([prompt], 2, greedy)[0]
    assert [c.token_ids for c in got] == [c.token_ids for c in want]
    for mine, theirs in zip(got, want):
        assert mine.logprobs == pytest.approx(theirs.logprobs, abs=1e-5)

    first = zero3.train_step(toy_batch())
    second = zero3.train_step(toy_batch())
    assert second["loss"] < first["loss"]
    after = engine.generate([prompt], 1, greedy)[0][0]  # the hooks and partitions survive a second round
    assert len(after.token_ids) > 0
