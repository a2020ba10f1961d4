"""From an update batch to the loss: advantages per role and the aggregation over the batch, on a
two-role batch whose loss is computed by hand, through the real trainer."""

from __future__ import annotations

import functools

import pytest

from spell.batch import QuestionRecord, ResponderGroup, UpdateBatch, VerifierGroup
from spell.engines.base import Completion
from spell.loss import policy_loss
from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.rollout import Rollout
from spell.trainers.base import TrainerSettings
from spell.trainers.torch_trainer import TorchTrainer
from spell.update import update_sequences

EPS = 1e-6


def rollout(prompt, n_tokens, first):
    ids = list(range(first, first + n_tokens))
    return Rollout(list(prompt), Completion("x", ids, [-1.0] * n_tokens, "stop", len(prompt)))


def two_role_batch() -> UpdateBatch:
    """Responder: one group, rewards [1, 0], responses of 3 and 1 tokens.
    Verifier: one group, rewards [1, 1, 0], responses of 2, 1 and 3 tokens. No questioner."""
    question = QuestionRecord(task="doc_mc", cluster="c")
    responder = ResponderGroup(question, [1.0, 0.0], [rollout([5, 6, 7], 3, 20), rollout([5, 6, 7], 1, 30)])
    verifier = VerifierGroup(
        question, decisions=[1, 1, 0], rewards=[1.0, 1.0, 0.0], majority=1, eligible=True,
        samples=[rollout([8, 9], 2, 40), rollout([8, 9], 1, 50), rollout([8, 9], 3, 60)],
    )
    return UpdateBatch(responder=[responder], questioner=[], verifier=[verifier])


# Advantages by hand, unbiased std (n - 1), eps 1e-6:
# responder [1, 0]: mean 0.5, std sqrt(0.5) = 0.70710678 -> +-0.5 / 0.70710778 = +-0.70710578
# verifier [1, 1, 0]: mean 2/3, variance (1/9 + 1/9 + 4/9) / 2 = 1/3, std 0.57735027
#   -> (1/3) / 0.57735127 = 0.57734927 and -(2/3) / 0.57735127 = -1.15469854
R = 0.5 / (0.5**0.5 + EPS)
V_YES, V_NO = (1 / 3) / ((1 / 3) ** 0.5 + EPS), -(2 / 3) / ((1 / 3) ** 0.5 + EPS)


def test_advantages_per_role_hand_computed():
    sequences, counts = update_sequences(two_role_batch())
    assert counts == {"questioner": 0, "responder": 2, "verifier": 3}
    assert [s.role for s in sequences] == ["responder", "responder", "verifier", "verifier", "verifier"]
    assert [s.advantage for s in sequences] == pytest.approx([R, -R, V_YES, V_YES, V_NO])
    assert R == pytest.approx(0.70710578) and V_NO == pytest.approx(-1.15469854)
    # population std: responder std 0.5 -> +-1; verifier std sqrt(2/9) = 0.47140452
    pop, _ = update_sequences(two_role_batch(), unbiased_std=False)
    assert [s.advantage for s in pop][:2] == pytest.approx([0.5 / (0.5 + EPS), -0.5 / (0.5 + EPS)])


def test_per_role_mean_scales_each_role_by_all_tokens_over_its_tokens():
    plain, _ = update_sequences(two_role_batch())
    scaled, _ = update_sequences(two_role_batch(), per_role_mean=True)
    # 10 tokens in all: responder 4 -> x 10/4, verifier 6 -> x 10/6
    assert [s.advantage / p.advantage for s, p in zip(scaled, plain)] == pytest.approx([2.5, 2.5, 10 / 6, 10 / 6, 10 / 6])


@pytest.fixture(scope="module")
def model_path():
    return prepare_model(TINY_RANDOM)


def trained_loss(model_path, sequences) -> float:
    """The trainer's loss on `sequences`, strictly on-policy (old log-probs = the model's, so every
    ratio is 1 and each token's clipped loss is -A), over several micro-batches."""
    model, tokenizer = load_model(model_path)
    settings = TrainerSettings(lr=1e-4, pad_token_id=tokenizer.pad_token_id, micro_batch_tokens=6, share_prefix=False)
    trainer = TorchTrainer(model, functools.partial(policy_loss, clip=0.2, dual_clip=3.0), settings)
    for seq, lp in zip(sequences, trainer.compute_logprobs(sequences)):
        seq.old_logprobs = lp
    metrics = trainer.train_step(sequences)
    assert metrics["micro_batches"] > 1
    return metrics["loss"]


def test_one_token_mean_over_the_two_role_batch(model_path):
    # The release's aggregation: sum of -A over all 10 response tokens / 10
    #   responder 3 x R + 1 x (-R) = 2R = 1.41421156
    #   verifier  2 x V_YES + 1 x V_YES + 3 x V_NO = 1.73204781 - 3.46409562 = -1.73204781
    #   loss = -(1.41421156 - 1.73204781) / 10 = 0.03178363
    expected = -((3 - 1) * R + (2 + 1) * V_YES + 3 * V_NO) / 10
    assert expected == pytest.approx(0.03178363, abs=1e-7)
    sequences, _ = update_sequences(two_role_batch())
    assert trained_loss(model_path, sequences) == pytest.approx(expected, rel=1e-5)


def test_per_role_mean_is_the_sum_of_the_roles_token_means(model_path):
    #   responder: -(2R) / 4 = -0.35355289; verifier: -(-1.73204781) / 6 = 0.28867464
    #   sum = -0.06487825 (the verifier's 6 tokens now weigh as much as the responder's 4)
    expected = -(2 * R) / 4 - (3 * V_YES + 3 * V_NO) / 6
    assert expected == pytest.approx(-0.06487825, abs=1e-7)
    sequences, _ = update_sequences(two_role_batch(), per_role_mean=True)
    assert trained_loss(model_path, sequences) == pytest.approx(expected, rel=1e-5)


def test_tokens_a_grammar_forced_are_left_out_of_the_loss():
    from spell.batch import UpdateBatch, QuestionRecord, ResponderGroup
    from spell.engines.base import Completion
    from spell.rollout import Rollout
    from spell.update import update_sequences

    def rollout(tokens, forced):
        return Rollout([1, 2], Completion("x", tokens, [-1.0] * len(tokens), "stop", forced=forced))

    q = QuestionRecord("doc_mc", "c")
    group = ResponderGroup(q, [1.0, 0.0, 0.0], [
        rollout([5, 6, 7], [True, False, True]),
        rollout([5, 8, 7], None),  # no grammar: every token trains
        rollout([5, 7], [True, True]),  # all forced: nothing chosen, left out
    ])
    sequences, counts = update_sequences(UpdateBatch([group], [], []), unbiased_std=False)

    assert [s.loss_mask for s in sequences] == [[False, True, False], None]
    assert counts["responder"] == 2
