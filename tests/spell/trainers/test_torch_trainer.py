"""The torch trainer: packing, exact accumulation, one step lowering the loss, state round trip."""

from __future__ import annotations

import pytest
import torch

from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.trainers.base import TrainerSettings, TrainSequence, collate, pack_micro_batches
from spell.trainers.torch_trainer import TorchTrainer


def reinforce_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, entropy=None):
    """Token-mean -A * logp: simple enough to reason about, same call shape as spell.loss."""
    mask = mask.float()
    loss = -(advantages * logprobs * mask).sum() / mask.sum()
    return loss, {"mean_logprob": float((logprobs.detach() * mask).sum() / mask.sum())}


def toy_batch() -> list[TrainSequence]:
    # Four sequences of different lengths (5, 7, 9, 4 tokens); advantages of both signs.
    return [
        TrainSequence([1, 11, 12], [13, 14], [-10.0, -10.0], 1.0, "responder"),
        TrainSequence([1, 21, 22, 23], [24, 25, 26], [-10.0] * 3, -0.5, "verifier"),
        TrainSequence([1, 31], [32, 33, 34, 35, 36, 37, 38], [-10.0] * 7, 0.8, "questioner"),
        TrainSequence([1, 41, 42], [43], [-10.0], 1.5, "responder"),
    ]


@pytest.fixture(scope="module")
def model_path():
    return prepare_model(TINY_RANDOM)


def fresh_trainer(model_path, **overrides) -> TorchTrainer:
    torch.manual_seed(0)
    model, tokenizer = load_model(model_path)
    settings = TrainerSettings(lr=1e-3, pad_token_id=tokenizer.pad_token_id, **overrides)
    return TorchTrainer(model, reinforce_loss, settings)


def test_packing_fits_the_token_budget_longest_first():
    batch = toy_batch()  # lengths 5, 7, 9, 4
    # Budget 14: [9] alone (2 x 9 > 14), then [7, 5] (2 x 7 = 14), then [4].
    assert pack_micro_batches(batch, 14) == [[2], [1, 0], [3]]
    # Budget 100: 7 and 5 join the 9; 4 is under half of 9 and starts a micro-batch of its own.
    assert pack_micro_batches(batch, 100) == [[2, 1, 0], [3]]
    # A sequence longer than the budget still gets its own micro-batch.
    assert pack_micro_batches(batch, 3) == [[2], [1], [0], [3]]


def test_short_rows_are_not_padded_to_a_long_one():
    """A warm-up batch: one questioner row with its documents, seven short verifier rows. Packed
    together they would run 8 x 1,500 positions for 2,200 tokens."""
    long = TrainSequence([1] * 1490, [2] * 10, [0.0] * 10, 1.0, "questioner")
    short = [TrainSequence([1] * 97, [2] * 3, [0.0] * 3, 1.0, "verifier") for _ in range(7)]
    groups = pack_micro_batches([long, *short], 16384)
    assert groups == [[0], [1, 2, 3, 4, 5, 6, 7]]


def test_collate_right_pads_and_marks_the_response():
    micro = collate(toy_batch(), [1, 0], pad_token_id=0)
    assert micro.input_ids.tolist() == [[1, 21, 22, 23, 24, 25, 26], [1, 11, 12, 13, 14, 0, 0]]
    assert micro.attention_mask.tolist() == [[1] * 7, [1, 1, 1, 1, 1, 0, 0]]
    assert micro.response_mask.int().tolist() == [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0]]
    assert micro.advantages[0].tolist() == [0, 0, 0, 0, -0.5, -0.5, -0.5]
    assert micro.response_tokens == 5


def test_one_step_lowers_the_loss_of_the_batch(model_path):
    trainer = fresh_trainer(model_path)
    batch = toy_batch()
    first = trainer.train_step(batch)
    second = trainer.train_step(batch)
    assert second["loss"] < first["loss"]
    assert first["tokens"] == 13 and first["sequences"] == 4 and first["micro_batches"] == 2  # [9, 7, 5], [4]
    assert first["grad_norm"] > 0 and first["seconds"] > 0
    assert trainer.steps_done == 2


def test_accumulation_equals_one_big_batch(model_path):
    batch = toy_batch()
    # A large Adam eps makes the update proportional to the gradient; with eps=1e-8 the first
    # update is lr * sign(g), and fp32 noise on near-zero gradients would flip signs.
    whole = fresh_trainer(model_path, micro_batch_tokens=1000, eps=1.0)
    split = fresh_trainer(model_path, micro_batch_tokens=1, eps=1.0)  # one sequence per micro-batch
    whole_metrics = whole.train_step(batch)
    split_metrics = split.train_step(batch)
    assert split_metrics["micro_batches"] == 4
    assert split_metrics["loss"] == pytest.approx(whole_metrics["loss"], rel=1e-5)
    assert split_metrics["grad_norm"] == pytest.approx(whole_metrics["grad_norm"], rel=1e-4)
    for (name, a), (_, b) in zip(whole.model.named_parameters(), split.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-8), name


def test_loss_matches_a_hand_computation(model_path):
    trainer = fresh_trainer(model_path)
    batch = toy_batch()
    logprobs = trainer.compute_logprobs(batch)
    assert [len(lp) for lp in logprobs] == [2, 3, 7, 1]
    expected = -sum(s.advantage * sum(lp) for s, lp in zip(batch, logprobs)) / 13
    metrics = trainer.train_step(batch)
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)


def test_logprobs_are_taken_at_the_sampling_temperature(model_path):
    # TrainerSettings.temperature (the sampling temperature) tempers the logits before the
    # log-softmax, in the old / reference log-probs and in the loss: the engine records the same.
    trainer = fresh_trainer(model_path, temperature=0.7)
    seq = toy_batch()[2]
    (logprobs,) = trainer.compute_logprobs([seq])
    ids = torch.tensor([seq.prompt_ids + seq.response_ids])
    with torch.no_grad():
        tempered = torch.log_softmax(trainer.model(ids).logits.float()[0] / 0.7, dim=-1)
    p = len(seq.prompt_ids)
    expected = [float(tempered[p - 1 + i, t]) for i, t in enumerate(seq.response_ids)]
    assert logprobs == pytest.approx(expected, abs=1e-5)
    (plain,) = fresh_trainer(model_path).compute_logprobs([seq])
    assert plain != pytest.approx(expected, abs=1e-3)


def test_settings_from_a_run_config_take_its_sampling_temperature():
    from spell.config import preset, with_overrides

    assert TrainerSettings.from_run_config(preset("paper-7b")).temperature == 0.7
    assert TrainerSettings.from_run_config(preset("cpu-demo")).temperature == 0.7
    greedy = with_overrides(preset("cpu-demo"), {"sampling.temperature": 0.0})
    assert TrainerSettings.from_run_config(greedy).temperature == 1.0


def test_gradient_checkpointing_gives_the_same_step(model_path):
    plain = fresh_trainer(model_path)
    checkpointed = fresh_trainer(model_path, gradient_checkpointing=True)
    assert checkpointed.model.is_activation_checkpointing
    a = plain.train_step(toy_batch())
    b = checkpointed.train_step(toy_batch())
    assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)


def test_state_round_trip_continues_identically(model_path, tmp_path):
    batch = toy_batch()
    original = fresh_trainer(model_path)
    original.train_step(batch)
    state = original.state_dict()
    original.save_optimizer(tmp_path)

    restored = fresh_trainer(model_path)
    restored.load_state_dict(state)
    from_file = fresh_trainer(model_path)
    from_file.model.load_state_dict(state["model"])
    from_file.load_optimizer(tmp_path)
    assert restored.steps_done == from_file.steps_done == 1

    for trainer in (original, restored, from_file):
        trainer.train_step(batch)
    for name, param in original.model.named_parameters():
        assert torch.equal(param, dict(restored.model.named_parameters())[name]), name
        assert torch.equal(param, dict(from_file.model.named_parameters())[name]), name


def test_an_empty_batch_is_refused(model_path):
    trainer = fresh_trainer(model_path)
    with pytest.raises(ValueError, match="empty"):
        trainer.train_step([])
    with pytest.raises(ValueError, match="old logprobs"):
        TrainSequence([1], [2, 3], [-1.0], 1.0)
