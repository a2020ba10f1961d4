import math

import pytest
import torch

from spell.loss import aggregate, kl_penalty, policy_loss


def test_gradient_sign_follows_the_advantage():
    logp = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]], requires_grad=True)
    old = logp.detach().clone()
    adv = torch.tensor([1.0, -1.0])
    mask = torch.ones(2, 2)
    loss, _ = policy_loss(logp, old, adv, mask)
    loss.backward()
    # descending the loss raises log-probs of the positive-advantage sequence, lowers the other's
    assert (logp.grad[0] < 0).all()
    assert (logp.grad[1] > 0).all()
    # on-policy (ratio 1): d loss / d logp = -A / n_tokens = -1/4, +1/4
    assert logp.grad.flatten().tolist() == pytest.approx([-0.25, -0.25, 0.25, 0.25])
    assert loss.item() == pytest.approx(0.0)


def test_clip_behaviour_hand_computed():
    # one token, A = +1, ratio e^0.5 = 1.6487 > 1.2: clipped -> loss -1.2, no gradient
    logp = torch.tensor([[0.5]], requires_grad=True)
    old = torch.zeros(1, 1)
    loss, m = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), clip=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(-1.2)
    assert logp.grad.item() == 0.0
    assert m["clip_fraction"] == 1.0
    # A = -1 with the same ratio: the unclipped term is larger -> loss e^0.5, gradient e^0.5
    logp = torch.tensor([[0.5]], requires_grad=True)
    loss, m = policy_loss(logp, old, torch.tensor([-1.0]), torch.ones(1, 1), clip=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(math.exp(0.5))
    assert logp.grad.item() == pytest.approx(math.exp(0.5))
    assert m["clip_fraction"] == 0.0
    # A = +1, ratio e^-0.5 = 0.6065 < 0.8: positive advantage is not clipped from below
    logp = torch.tensor([[-0.5]], requires_grad=True)
    loss, _ = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), clip=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(-math.exp(-0.5))
    assert logp.grad.item() == pytest.approx(-math.exp(-0.5))


def test_token_mean_and_seq_mean():
    values = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    # token-mean: (4 + 4) / 5 = 1.6; seq-mean: (1 + 4) / 2 = 2.5
    assert float(aggregate(values, mask, "token-mean")) == pytest.approx(1.6)
    assert float(aggregate(values, mask, "seq-mean")) == pytest.approx(2.5)
    # micro-batches: the global denominator makes the pieces add up
    a = aggregate(values[:1], mask[:1], "token-mean", denominator=5)
    b = aggregate(values[1:], mask[1:], "token-mean", denominator=5)
    assert float(a + b) == pytest.approx(1.6)
    with pytest.raises(ValueError):
        aggregate(values, mask, "sum")


def test_masked_tokens_do_not_count():
    logp = torch.tensor([[-1.0, -5.0]], requires_grad=True)
    loss, m = policy_loss(logp, logp.detach(), torch.tensor([2.0]), torch.tensor([[1.0, 0.0]]))
    loss.backward()
    assert logp.grad[0, 1].item() == 0.0
    assert m["tokens"] == 1.0


def test_kl_k3_hand_computed():
    logp = torch.tensor([[math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25)]])
    # log r = logp - ref = log 2; k3 = exp(-log 2) - 1 + log 2 = 0.5 - 1 + 0.693147 = 0.193147
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_penalty(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert kl_penalty(ref, ref, "k3").item() == 0.0


def test_kl_and_entropy_terms():
    logp = torch.tensor([[math.log(0.5)]], requires_grad=True)
    ref = torch.tensor([[math.log(0.25)]])
    ent = torch.tensor([[0.7]])
    loss, m = policy_loss(
        logp, logp.detach(), torch.tensor([0.0]), torch.ones(1, 1),
        ref_logprobs=ref, kl_coef=0.1, entropy=ent, entropy_coef=0.01,
    )
    expected = 0.1 * (0.5 - 1 + math.log(2)) - 0.01 * 0.7
    assert loss.item() == pytest.approx(expected)
    assert m["kl"] == pytest.approx(0.5 - 1 + math.log(2))
    assert m["entropy"] == pytest.approx(0.7)
    loss.backward()
    # the KL gradient pulls logp down toward ref: d/dlogp k3 = 1 - exp(ref - logp) = 0.5
    assert logp.grad.item() == pytest.approx(0.1 * 0.5)
    with pytest.raises(ValueError):
        policy_loss(logp, logp.detach(), torch.tensor([0.0]), torch.ones(1, 1), kl_coef=0.1)


def test_default_loss_has_no_kl_or_entropy_term():
    logp = torch.tensor([[-1.0]], requires_grad=True)
    loss, m = policy_loss(logp, logp.detach(), torch.tensor([1.0]), torch.ones(1, 1))
    assert loss.item() == pytest.approx(-1.0)
    assert "kl" not in m and "entropy" not in m


def test_dual_clip_bounds_the_loss_of_a_negative_advantage_hand_computed():
    # ratio e^1.5 = 4.4817 > c = 3, A = -1: PPO-clip alone gives max(4.4817, 1.2) = 4.4817; the
    # dual clip bounds it at -A x c = 3 (no gradient through the bound)
    logp = torch.tensor([[1.5]], requires_grad=True)
    old = torch.zeros(1, 1)
    loss, m = policy_loss(logp, old, torch.tensor([-1.0]), torch.ones(1, 1), clip=0.2, dual_clip=3.0)
    loss.backward()
    assert loss.item() == pytest.approx(3.0)
    assert logp.grad.item() == 0.0
    assert m["dual_clip_fraction"] == 1.0
    off, _ = policy_loss(logp.detach(), old, torch.tensor([-1.0]), torch.ones(1, 1), clip=0.2)
    assert off.item() == pytest.approx(math.exp(1.5))
    # below the bound (ratio e^0.5 = 1.6487 < 3) and for a positive advantage it changes nothing
    for lp, adv in ((0.5, -1.0), (1.5, 1.0)):
        x = torch.tensor([[lp]])
        a, _ = policy_loss(x, old, torch.tensor([adv]), torch.ones(1, 1), dual_clip=3.0)
        b, _ = policy_loss(x, old, torch.tensor([adv]), torch.ones(1, 1))
        assert a.item() == pytest.approx(b.item())
    with pytest.raises(ValueError):
        policy_loss(x, old, torch.tensor([1.0]), torch.ones(1, 1), dual_clip=0.9)
