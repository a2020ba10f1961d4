"""Checkpoints: round trip (weights, optimizer, JSON state, RNG), retention, partial ones ignored."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from spell.checkpoint import (
    CheckpointError,
    TrainingState,
    capture_rng_state,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.trainers.base import TrainerSettings, TrainSequence
from spell.trainers.torch_trainer import TorchTrainer


def mean_logprob_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, entropy=None):
    mask = mask.float()
    return -(advantages * logprobs * mask).sum() / mask.sum(), {}


@pytest.fixture(scope="module")
def tiny():
    return load_model(prepare_model(TINY_RANDOM))


def save_step(root, model, step, score=None, **kwargs):
    return save_checkpoint(root, TrainingState(step=step, eval_score=score), model, **kwargs)


def test_round_trip_restores_weights_optimizer_state_and_rng(tiny, tmp_path):
    model, tokenizer = tiny
    trainer = TorchTrainer(model, mean_logprob_loss, TrainerSettings(lr=1e-3, pad_token_id=2))
    trainer.train_step([TrainSequence([1, 5, 6], [7, 8], [-10.0, -10.0], 1.0)])
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    state = TrainingState(
        step=10,
        config={"model": {"path": "tiny"}},
        curriculum={"stage": 2, "history": [0.5, 0.75]},
        memory={"per_doc_set": {"c3": ["q1"]}},
        data_position={"epoch": 1, "cursor": 42},
        rng=capture_rng_state(),
        eval_score=0.25,
    )
    expected_draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))

    path = save_checkpoint(tmp_path, state, model, tokenizer, save_optimizer=trainer.save_optimizer)
    assert path.name == "step-000010"
    assert (tmp_path / "latest").read_text().strip() == "step-000010"

    loaded = load_checkpoint(tmp_path)  # the checkpoints root resolves to the latest
    assert loaded.path == path
    assert loaded.state.step == 10
    assert loaded.state.curriculum == {"stage": 2, "history": [0.5, 0.75]}
    assert loaded.state.data_position == {"epoch": 1, "cursor": 42}
    assert loaded.state.eval_score == 0.25

    restore_rng_state(loaded.state.rng)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected_draws

    restored_model, restored_tokenizer = load_model(loaded.model_dir)
    assert restored_tokenizer.chat_template == tokenizer.chat_template
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored_model.state_dict()[key]), key
    restored = TorchTrainer(restored_model, mean_logprob_loss, TrainerSettings(lr=1e-3, pad_token_id=2))
    restored.load_optimizer(loaded.optimizer_folder())
    assert restored.steps_done == 1
    moments = trainer.optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(restored.optimizer.state_dict()["state"][0]["exp_avg"], moments)


def test_retention_keeps_the_last_k_and_the_best(tiny, tmp_path):
    model, _ = tiny
    scores = {1: 0.1, 2: 0.9, 3: 0.3, 4: 0.2, 5: 0.4}
    for step, score in scores.items():
        save_step(tmp_path, model, step, score, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000002", "step-000004", "step-000005"]
    assert latest_checkpoint(tmp_path).name == "step-000005"
    # Lower is better (a loss): step 1 had the lowest score but is gone; of the rest, step 4 (0.2).
    save_step(tmp_path, model, 6, 0.5, keep_last=1, higher_is_better=False)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000004", "step-000006"]


def test_a_half_written_checkpoint_is_ignored(tiny, tmp_path):
    model, _ = tiny
    save_step(tmp_path, model, 3)
    # A crash while writing step 4: its scratch folder and a renamed folder without state.json.
    (tmp_path / ".incomplete-step-000004-999").mkdir()
    partial = tmp_path / "step-000005"
    (partial / "model").mkdir(parents=True)
    (partial / "model" / "config.json").write_text("{}")
    (tmp_path / "latest").write_text("step-000005\n")

    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000003"]
    assert latest_checkpoint(tmp_path).name == "step-000003"
    assert load_checkpoint(tmp_path).state.step == 3
    with pytest.raises(CheckpointError, match="partial"):
        load_checkpoint(partial)


def test_unreadable_checkpoints_raise_one_clear_line(tmp_path):
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    broken = tmp_path / "step-000001"
    (broken / "model").mkdir(parents=True)
    (broken / "model" / "config.json").write_text("{}")
    (broken / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON") as caught:
        load_checkpoint(broken)
    assert "\n" not in str(caught.value)
    (broken / "state.json").write_text(json.dumps({"version": 99, "step": 1}))
    with pytest.raises(CheckpointError, match="newer version"):
        load_checkpoint(broken)
