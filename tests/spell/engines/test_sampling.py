"""NucleusSampler draws from exactly the distribution transformers' temperature + top-p gives."""

from __future__ import annotations

import pytest
import torch
from transformers import TemperatureLogitsWarper, TopPLogitsWarper

from spell.engines.sampling import NucleusSampler, sample_tokens


def reference_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The sampling distribution transformers' own warpers produce ([batch, vocab])."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.softmax(scores, dim=-1)


def empirical(logits: torch.Tensor, temperature: float, top_p: float, candidates: int, draws: int) -> torch.Tensor:
    batch, vocab = logits.shape
    counts = torch.zeros(batch, vocab)
    tokens = sample_tokens(logits.repeat_interleave(draws, dim=0), temperature, top_p, candidates).view(batch, draws)
    for row in range(batch):
        counts[row] = torch.bincount(tokens[row], minlength=vocab).float()
    return counts / draws


@pytest.mark.parametrize("candidates", [4, 64])  # 4: the nucleus outgrows the candidates, full-sort path
def test_the_draws_follow_the_reference_nucleus_distribution(candidates):
    torch.manual_seed(0)
    logits = torch.randn(3, 40) * torch.tensor([[3.0], [1.0], [0.3]])  # peaked, medium, flat rows
    expected = reference_probs(logits, 0.7, 0.9)
    got = empirical(logits, 0.7, 0.9, candidates, draws=40_000)
    assert torch.equal(got > 0, (expected > 0) & (got > 0))  # never outside the nucleus
    assert ((expected > 0.01) <= (got > 0)).all()  # every likely nucleus token shows up
    assert (got - expected).abs().max() < 0.012


def test_the_support_is_exactly_the_reference_nucleus():
    # A hand-made row: probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1. The nucleus is the
    # shortest run of top tokens whose mass reaches top_p, the token that crosses it included
    # (top_p values sit between the cumulative sums, away from float ties).
    logits = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))
    for top_p, nucleus in ((0.45, {1}), (0.75, {1, 3}), (0.85, {1, 3, 2}), (1.0, {0, 1, 2, 3})):
        expected = set(reference_probs(logits, 1.0, top_p)[0].nonzero().flatten().tolist())
        assert expected == nucleus
        seen = set(sample_tokens(logits.repeat(4000, 1), 1.0, top_p, candidates=2).tolist())
        assert seen == nucleus


def test_forbidden_tokens_are_never_drawn_and_an_all_forbidden_row_does_not_fail():
    torch.manual_seed(1)
    logits = torch.randn(2, 1000)
    logits[0, :500] = float("-inf")  # a grammar mask
    logits[1, :] = float("-inf")  # nothing allowed
    tokens = sample_tokens(logits.repeat(200, 1), 0.7, 0.95, candidates=64).view(200, 2)
    assert (tokens[:, 0] >= 500).all()
    assert ((tokens[:, 1] >= 0) & (tokens[:, 1] < 1000)).all()


def test_as_a_processor_it_leaves_only_the_drawn_token_and_is_reproducible():
    logits = torch.randn(5, 300)
    torch.manual_seed(7)
    first = NucleusSampler(0.7, 0.95)(None, logits)
    torch.manual_seed(7)
    second = NucleusSampler(0.7, 0.95)(None, logits)
    assert torch.equal(first, second)
    assert (torch.isfinite(first).sum(dim=-1) == 1).all()
    assert torch.equal(first.argmax(dim=-1), torch.isfinite(first).float().argmax(dim=-1))


def test_it_refuses_settings_that_are_not_sampling():
    with pytest.raises(ValueError):
        NucleusSampler(0.0, 0.9)
    with pytest.raises(ValueError):
        NucleusSampler(0.7, 0.0)


@pytest.mark.parametrize("candidates", [4, 64])
def test_per_row_draws_follow_the_nucleus_and_ignore_the_other_rows(candidates):
    """With one uniform per row (each sample's own generator) the draws still follow the nucleus
    distribution, and a row's token is the same whether it is drawn alone or beside other rows
    (what lets ranks split a batch, spell/distributed.py)."""
    from spell.engines.sampling import row_generator

    torch.manual_seed(0)
    logits = torch.randn(3, 40) * torch.tensor([[3.0], [1.0], [0.3]])
    draws = 20_000
    uniforms = torch.rand(3 * draws)
    tokens = sample_tokens(logits.repeat_interleave(draws, dim=0), 0.7, 0.9, candidates, uniforms=uniforms).view(3, draws)
    expected = reference_probs(logits, 0.7, 0.9)
    for row in range(3):
        got = torch.bincount(tokens[row], minlength=40).float() / draws
        assert ((got > 0) <= (expected[row] > 0)).all() and (got - expected[row]).abs().max() < 0.015
    alone = [int(sample_tokens(logits[r : r + 1], 0.7, 0.9, candidates, uniforms=uniforms[r * draws : r * draws + 1]))
             for r in range(3)]
    assert alone == tokens[:, 0].tolist()
    first = torch.rand(1, generator=row_generator(7, 1))
    assert torch.equal(first, torch.rand(1, generator=row_generator(7, 1)))  # the same in every process
    assert not torch.equal(first, torch.rand(1, generator=row_generator(7, 2)))
