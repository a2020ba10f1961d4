"""Prefix-shared training rows: a group's prompt computed once gives the same log-probabilities,
loss and update as one row per sequence."""

from __future__ import annotations

import pytest
import torch

from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.trainers.base import TrainerSettings, TrainSequence, collate, micro_batches, plan_rows, sequence_logprobs
from spell.trainers.torch_trainer import TorchTrainer

from tests.spell.trainers.test_torch_trainer import reinforce_loss


def group_batch() -> list[TrainSequence]:
    """Two responder groups (prompts A and B, three and two responses) and a lone verifier."""
    prompt_a = [1, 11, 12, 13, 14, 15]
    prompt_b = [1, 21, 22, 23]
    return [
        TrainSequence(prompt_a, [31, 32, 33], [-10.0] * 3, 1.0, "responder"),
        TrainSequence(prompt_b, [41, 42], [-10.0] * 2, 0.7, "responder"),
        TrainSequence(prompt_a, [34], [-10.0], -0.5, "responder"),
        TrainSequence([1, 51, 52], [53, 54, 55, 56], [-10.0] * 4, 0.3, "verifier"),
        TrainSequence(prompt_a, [35, 36, 37, 38, 39], [-10.0] * 5, -1.2, "responder"),
        TrainSequence(prompt_b, [43, 44, 45], [-10.0] * 3, -0.7, "responder"),
    ]


@pytest.fixture(scope="module")
def model_path():
    return prepare_model(TINY_RANDOM)


def test_rows_put_a_prompt_once_and_then_each_response():
    batch = group_batch()
    assert plan_rows(batch, 1000, share_prefix=True) == [[0, 2, 4], [1, 5], [3]]
    micro = collate(batch, [[1, 5]], pad_token_id=0)
    assert micro.input_ids.tolist() == [[1, 21, 22, 23, 41, 42, 43, 44, 45]]
    assert micro.position_ids.tolist() == [[0, 1, 2, 3, 4, 5, 4, 5, 6]]
    assert micro.segments.tolist() == [[0, 0, 0, 0, 1, 1, 2, 2, 2]]
    # Both responses' first tokens are predicted by the last prompt token (position 3).
    assert micro.predictors.tolist()[0][4:] == [3, 4, 3, 6, 7]
    assert micro.response_mask.int().tolist() == [[0, 0, 0, 0, 1, 1, 1, 1, 1]]
    assert micro.advantages.tolist()[0][4:] == pytest.approx([0.7, 0.7, -0.7, -0.7, -0.7])
    assert micro.spans == [(1, 0, 4, 6), (5, 0, 6, 9)]


def test_a_group_past_the_budget_is_split_into_rows_that_each_repeat_the_prompt():
    batch = group_batch()
    # prompt A (6) + 3 + 1 = 10 fits a budget of 10; the 5-token response starts a new row.
    assert plan_rows(batch, 10, share_prefix=True)[0] == [0, 2]
    assert plan_rows(batch, 10, share_prefix=True)[1] == [4]


def test_log_probabilities_match_one_row_per_sequence(model_path):
    model, tokenizer = load_model(model_path)
    model.eval()
    batch = group_batch()
    settings = TrainerSettings(pad_token_id=tokenizer.pad_token_id, micro_batch_tokens=64)
    shared = sequence_logprobs(model, batch, settings, "cpu", share_prefix=True)
    plain = sequence_logprobs(model, batch, settings, "cpu", share_prefix=False)
    assert [len(x) for x in shared] == [len(s.response_ids) for s in batch]
    for got, want in zip(shared, plain):
        assert got == pytest.approx(want, abs=2e-5)
    assert len(micro_batches(batch, settings, True)) <= len(micro_batches(batch, settings, False))


def trainer(model_path, share_prefix: bool, **overrides) -> TorchTrainer:
    torch.manual_seed(0)
    model, tokenizer = load_model(model_path)
    settings = TrainerSettings(lr=1e-3, eps=1.0, pad_token_id=tokenizer.pad_token_id, share_prefix=share_prefix, **overrides)
    return TorchTrainer(model, reinforce_loss, settings)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_update_matches_one_row_per_sequence(model_path, checkpointing):
    shared = trainer(model_path, True, gradient_checkpointing=checkpointing)
    plain = trainer(model_path, False, gradient_checkpointing=checkpointing)
    shared_metrics = shared.train_step(group_batch())
    plain_metrics = plain.train_step(group_batch())
    assert shared_metrics["loss"] == pytest.approx(plain_metrics["loss"], rel=1e-5)
    assert shared_metrics["grad_norm"] == pytest.approx(plain_metrics["grad_norm"], rel=1e-4)
    assert shared_metrics["tokens"] == plain_metrics["tokens"] == 18
    # The prompts of the groups were computed once instead of once per response.
    assert shared_metrics["trained_positions"] < plain_metrics["trained_positions"]
    for (name, a), (_, b) in zip(shared.model.named_parameters(), plain.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_seq_mean_keeps_one_sequence_per_row(model_path):
    # Several sequences in one row would need per-sequence weights inside the row for seq-mean.
    seq_mean = trainer(model_path, True, loss_aggregation="seq-mean")
    metrics = seq_mean.train_step(group_batch())
    assert metrics["trained_positions"] == sum(s.length for s in group_batch())


def test_rows_longer_than_the_shared_row_cap_keep_one_sequence_each(model_path):
    # Prompt A is 6 tokens: with a cap of 8 tokens a row fits it and one short response at most.
    capped = trainer(model_path, True, shared_row_max_tokens=8)
    metrics = capped.train_step(group_batch())
    shared = trainer(model_path, True).train_step(group_batch())
    assert shared["trained_positions"] < metrics["trained_positions"] <= sum(s.length for s in group_batch())
