"""The HF rollout engine on the tiny random model: prefix sharing changes nothing but speed,
log-probabilities are the tempered policy's, seeds reproduce, stops and lengths are reported."""

from __future__ import annotations

import pytest
import torch

from spell.engines.base import SamplingParams
from spell.engines.hf import HFEngine
from spell.models import TINY_RANDOM, load_model, prepare_model


@pytest.fixture(scope="module")
def tiny():
    return load_model(prepare_model(TINY_RANDOM))


@pytest.fixture(scope="module")
def prompts(tiny):
    _, tokenizer = tiny
    texts = ["Which city hosts the archive described in the second report?", "Hi"]
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, return_dict=False)
        for t in texts
    ]


GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


def test_prefix_sharing_gives_the_same_greedy_outputs(tiny, prompts):
    model, tokenizer = tiny
    plain = HFEngine(model, tokenizer, share_prefix=False).generate(prompts, 3, GREEDY)
    shared = HFEngine(model, tokenizer, share_prefix=True).generate(prompts, 3, GREEDY)
    # One prompt per batch as well: no padding on the shared path.
    alone = HFEngine(model, tokenizer, share_prefix=True, max_batch_sequences=3).generate(prompts, 3, GREEDY)
    for a, b, c in zip(plain, shared, alone):
        for x, y, z in zip(a, b, c):
            assert x.token_ids == y.token_ids == z.token_ids
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
    # The two prompts continue differently and the tiny model does not just repeat one token.
    assert plain[0][0].token_ids != plain[1][0].token_ids
    assert len(set(plain[0][0].token_ids)) > 3
    assert [len(group) for group in shared] == [3, 3]
    assert shared[0][0].prompt_tokens == len(prompts[0])
    assert shared[1][0].prompt_tokens == len(prompts[1])


def test_logprobs_are_those_of_the_tempered_policy(tiny, prompts):
    # Sampled at T = 0.7: the recorded log-probability is log softmax(logits / 0.7) of the sampled
    # token (before top-p), the distribution the trainer recomputes (verl and TRL alike).
    model, tokenizer = tiny
    sampling = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=8, seed=5)
    completion = HFEngine(model, tokenizer).generate([prompts[0]], 2, sampling)[0][1]
    ids = torch.tensor([prompts[0] + completion.token_ids])
    with torch.no_grad():
        logits = model(ids).logits.float()[0]
    start = len(prompts[0])
    tempered = torch.log_softmax(logits / 0.7, dim=-1)
    expected = [float(tempered[start - 1 + i, t]) for i, t in enumerate(completion.token_ids)]
    assert len(completion.logprobs) == len(completion.token_ids) == 8
    assert completion.logprobs == pytest.approx(expected, abs=1e-4)
    raw = torch.log_softmax(logits, dim=-1)
    untempered = [float(raw[start - 1 + i, t]) for i, t in enumerate(completion.token_ids)]
    assert completion.logprobs != pytest.approx(untempered, abs=1e-3)
    # greedy decoding has no temperature: the model's own distribution
    greedy = HFEngine(model, tokenizer).generate([prompts[0]], 1, SamplingParams(temperature=0.0, max_new_tokens=4))[0][0]
    ids = torch.tensor([prompts[0] + greedy.token_ids])
    with torch.no_grad():
        raw = torch.log_softmax(model(ids).logits.float()[0], dim=-1)
    assert greedy.logprobs == pytest.approx([float(raw[start - 1 + i, t]) for i, t in enumerate(greedy.token_ids)], abs=1e-4)


def test_same_seed_same_samples_and_the_global_rng_is_untouched(tiny, prompts):
    model, tokenizer = tiny
    engine = HFEngine(model, tokenizer)
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=6, seed=11)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = engine.generate(prompts, 4, sampling)
    assert torch.equal(torch.get_rng_state(), before)
    second = engine.generate(prompts, 4, sampling)
    other = engine.generate(prompts, 4, SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=6, seed=12))
    ids = lambda result: [[c.token_ids for c in group] for group in result]  # noqa: E731
    assert ids(first) == ids(second)
    assert ids(first) != ids(other)
    assert len({tuple(c.token_ids) for c in first[0]}) > 1  # the 4 samples differ


def test_stop_token_ends_a_completion_and_length_is_reported(tiny, prompts):
    model, tokenizer = tiny
    free = HFEngine(model, tokenizer).generate([prompts[0]], 1, GREEDY)[0][0]
    assert free.finish_reason == "length" and free.truncated and len(free.token_ids) == 12
    # Make the 4th greedy token a stop token: the completion keeps it and ends there.
    fourth = free.token_ids[3]
    engine = HFEngine(model, tokenizer, stop_token_ids=[fourth])
    stopped = engine.generate([prompts[0]], 2, GREEDY)[0][0]
    assert stopped.finish_reason == "stop"
    assert stopped.token_ids == free.token_ids[:4]
    assert stopped.text == tokenizer.decode(free.token_ids[:3], skip_special_tokens=True)
    assert engine.stats.generated_tokens == 8 and engine.stats.prompt_tokens == 2 * len(prompts[0])


def test_default_stops_include_im_end(tiny):
    _, tokenizer = tiny
    engine = HFEngine(tiny[0], tokenizer)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in engine.stop_token_ids


def test_sync_weights_is_a_no_op_when_colocated_and_copies_otherwise(tiny):
    model, tokenizer = tiny
    colocated = HFEngine(model, tokenizer)
    zeros = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    colocated.sync_weights(zeros)
    assert float(model.state_dict()["model.norm.weight"].abs().sum()) > 0

    separate_model, _ = load_model(prepare_model(TINY_RANDOM))
    separate = HFEngine(separate_model, tokenizer, colocated=False)
    separate.sync_weights(zeros)
    assert float(separate_model.state_dict()["model.norm.weight"].abs().sum()) == 0


def test_prompts_longer_than_the_model_allows_are_refused(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="no room"):
        HFEngine(model, tokenizer).generate([[5] * 8192], 1, GREEDY)
