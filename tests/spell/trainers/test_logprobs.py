"""Chunked log-probabilities equal the naive full-logits computation (values, entropy, grads)."""

from __future__ import annotations

import pytest
import torch

from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.trainers.logprobs import gather_logprobs, token_logprobs


@pytest.fixture(scope="module")
def model():
    model, _ = load_model(prepare_model(TINY_RANDOM))
    return model


def _batch():
    # Two right-padded rows: 7 real tokens (prompt 3 + response 4) and 5 (prompt 2 + response 3).
    ids = torch.tensor([[11, 22, 33, 44, 55, 66, 77], [101, 202, 303, 404, 505, 0, 0]])
    attention = torch.tensor([[1] * 7, [1] * 5 + [0, 0]])
    target = torch.zeros_like(ids, dtype=torch.bool)
    target[0, 3:7] = True
    target[1, 2:5] = True
    return ids, attention, target


def _naive(model, ids, attention, target):
    logits = model(input_ids=ids, attention_mask=attention).logits.float()
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
    picked = log_probs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    mask = target[:, 1:]
    out = torch.zeros(ids.shape)
    out_entropy = torch.zeros(ids.shape)
    out[:, 1:] = torch.where(mask, picked, torch.zeros_like(picked))
    out_entropy[:, 1:] = torch.where(mask, entropy, torch.zeros_like(entropy))
    return out, out_entropy


@pytest.mark.parametrize("chunk", [1, 3, 1024])
def test_it_matches_the_naive_computation(model, chunk):
    ids, attention, target = _batch()
    with torch.no_grad():
        expected, expected_entropy = _naive(model, ids, attention, target)
        got = token_logprobs(model, ids, attention, target, chunk_size=chunk, with_entropy=True)
    assert torch.allclose(got.logprobs, expected, atol=1e-5)
    assert torch.allclose(got.entropy, expected_entropy, atol=1e-4)
    # 7 scored tokens, and only where the target mask says.
    assert int((got.logprobs != 0).sum()) == 7
    assert got.logprobs[1, 5:].tolist() == [0.0, 0.0]
    # A near-uniform random model: entropy close to log(vocab) = log(49152) = 10.80.
    assert 9.0 < float(got.entropy[0, 3]) <= 10.81


def test_its_gradients_match_the_naive_ones(model):
    ids, attention, target = _batch()
    weights = torch.linspace(0.5, 1.5, ids.numel()).reshape(ids.shape)

    model.zero_grad()
    expected, _ = _naive(model, ids, attention, target)
    (expected * weights).sum().backward()
    naive_grads = {n: p.grad.clone() for n, p in model.named_parameters()}

    model.zero_grad()
    got = token_logprobs(model, ids, attention, target, chunk_size=2)
    (got.logprobs * weights).sum().backward()
    for name, param in model.named_parameters():
        # fp32 sums in a different order: compare relative to the gradient's scale.
        scale = float(naive_grads[name].abs().max())
        assert scale > 0, name
        assert torch.allclose(param.grad, naive_grads[name], atol=1e-5 * scale, rtol=1e-4), name
    model.zero_grad()


def test_gather_on_hand_made_logits():
    # lm_head = identity on 3 "hidden" dims = 3 logits; log_softmax([0, ln 2, ln 5]) = log([1,2,5]/8).
    head = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3))
    hidden = torch.log(torch.tensor([[1.0, 2.0, 5.0], [1.0, 2.0, 5.0]]))
    picked, entropy = gather_logprobs(hidden, torch.tensor([2, 0]), head, chunk_size=1, with_entropy=True)
    assert torch.allclose(picked, torch.log(torch.tensor([5 / 8, 1 / 8])))
    p = torch.tensor([1 / 8, 2 / 8, 5 / 8])
    assert torch.allclose(entropy, (-(p * p.log()).sum()).repeat(2))
