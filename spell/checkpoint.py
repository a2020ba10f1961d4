"""Checkpoints: everything a paused or crashed run needs to continue exactly where it was.

Layout (docs/architecture.md):
    DIR/checkpoints/step-000010/model/        Hugging Face folder (weights, config, tokenizer)
    DIR/checkpoints/step-000010/optimizer.pt  (or deepspeed/ for the DeepSpeed trainer)
    DIR/checkpoints/step-000010/state.json    step, curriculum / memory, data position, RNG, config
    DIR/checkpoints/latest                    name of the newest complete checkpoint

A checkpoint is written into a hidden scratch folder and renamed into place when complete, and
`latest` is replaced atomically after that, so a crash at any moment leaves either the previous
checkpoint or the new one, never a half-written one in use. Retention keeps the newest K plus
the best by evaluation score.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from spell.distributed import SINGLE, DataParallel

# The layout's names and the rule for "complete" and "latest" live in spell/rundir.py (torch-free,
# shared with the worker and the web app); re-exported here for the loop and the tests.
from spell.rundir import (  # noqa: F401 - re-exported
    LATEST,
    MODEL_DIR,
    STATE_FILE,
    checkpoint_name,
    is_complete,
    latest_checkpoint,
    list_checkpoints,
)
from spell.rundir import CHECKPOINT_PREFIX as _PREFIX

STATE_VERSION = 1
_SCRATCH = ".incomplete-"


class CheckpointError(Exception):
    """A checkpoint is missing, partial or unreadable; the message is one line."""


@dataclass
class TrainingState:
    """The JSON part of a checkpoint. The dict fields come from each component's state_dict()."""

    step: int
    config: dict[str, Any] = field(default_factory=dict)
    curriculum: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    data_position: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)
    eval_score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "saved_at": time.time(), **self.__dict__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainingState":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class LoadedCheckpoint:
    path: Path
    model_dir: Path
    state: TrainingState

    def optimizer_folder(self) -> Path:
        """Hand this to trainer.load_optimizer(...)."""
        return self.path


# --------------------------------------------------------------------------- RNG state


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states as JSON-safe values."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": _bytes_to_text(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [_bytes_to_text(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "torch" in state:
        torch.set_rng_state(_text_to_bytes(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_text_to_bytes(s) for s in state["cuda"]])


def _bytes_to_text(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def _text_to_bytes(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


# --------------------------------------------------------------------------- listing


# --------------------------------------------------------------------------- save / load


def save_checkpoint(
    root: Path | str,
    state: TrainingState,
    model: Any,
    tokenizer: Any = None,
    save_optimizer: Callable[[Path], None] | None = None,
    model_state_dict: dict[str, torch.Tensor] | None = None,
    keep_last: int = 2,
    keep_best: bool = True,
    higher_is_better: bool = True,
    group: DataParallel = SINGLE,
) -> Path:
    """Write checkpoint `step-NNNNNN` under `root` (DIR/checkpoints), point `latest` at it,
    then apply retention. `save_optimizer(folder)` writes the trainer's state into the folder
    (trainer.save_optimizer); `model_state_dict` overrides the model's own weights (ZeRO-3).

    Several ranks all call this: they share one scratch folder (named after rank 0's process),
    rank 0 writes the model, the tokenizer and the state, every rank writes its own optimizer
    shard through `save_optimizer` (DeepSpeed's checkpoint is collective), and rank 0 alone moves
    the folder into place, once every rank is done."""
    root = Path(root)
    final = root / checkpoint_name(state.step)
    scratch = root / f"{_SCRATCH}{final.name}-{group.broadcast(os.getpid())}"
    if group.is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
    group.barrier()
    try:
        if group.is_main:
            model.save_pretrained(scratch / MODEL_DIR, state_dict=model_state_dict)
            if tokenizer is not None:
                tokenizer.save_pretrained(scratch / MODEL_DIR)
        if save_optimizer is not None:
            save_optimizer(scratch)
        group.barrier()
        if not group.is_main:
            group.barrier()  # rank 0 moves the folder into place
            return final
        _write_json(scratch / STATE_FILE, state.to_json())
    except BaseException as exc:
        # A write that failed (often a full disk: safetensors and torch.save word it their own way)
        # leaves the previous checkpoint and `latest` untouched; the scratch folder goes, so the
        # space it took is free again for the error to be reported.
        full = _disk_full(exc, root)
        shutil.rmtree(scratch, ignore_errors=True)
        if full:
            previous = latest_checkpoint(root)
            raise CheckpointError(
                f"no space left on the device of {root} while writing checkpoint {final.name}; "
                + (f"the previous checkpoint {previous.name} is kept" if previous else "no earlier checkpoint exists")
                + " (free some space, then resume the run)"
            ) from exc
        raise
    if final.exists():  # the same step saved again (e.g. a resumed attempt): replace it
        shutil.rmtree(final)
    scratch.rename(final)
    _write_text_atomically(root / LATEST, final.name + "\n")
    apply_retention(root, keep_last=keep_last, keep_best=keep_best, higher_is_better=higher_is_better)
    group.barrier()
    return final


def load_checkpoint(path: Path | str) -> LoadedCheckpoint:
    """Read a checkpoint folder, or the latest complete one when given the checkpoints root."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.name.startswith(_PREFIX):
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no complete checkpoint under {path}; start the run without --resume")
        path = found
    if not (path / MODEL_DIR / "config.json").is_file():
        raise CheckpointError(f"checkpoint {path} is partial (no {MODEL_DIR}/config.json); use an earlier one")
    try:
        data = json.loads((path / STATE_FILE).read_text())
    except OSError:
        raise CheckpointError(f"checkpoint {path} is partial (no {STATE_FILE}); use an earlier one") from None
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path}: {STATE_FILE} is not valid JSON ({error})") from None
    if not isinstance(data, dict) or "step" not in data:
        raise CheckpointError(f"checkpoint {path}: {STATE_FILE} has no step")
    if data.get("version", STATE_VERSION) > STATE_VERSION:
        raise CheckpointError(f"checkpoint {path} was written by a newer version (state v{data['version']})")
    return LoadedCheckpoint(path=path, model_dir=path / MODEL_DIR, state=TrainingState.from_json(data))


def apply_retention(
    root: Path | str, keep_last: int = 2, keep_best: bool = True, higher_is_better: bool = True
) -> list[Path]:
    """Delete complete checkpoints except the newest `keep_last`, the one `latest` names and
    (keep_best) the best by eval_score; clear stale scratch folders. Returns what was deleted."""
    root = Path(root)
    complete = list_checkpoints(root)
    keep = set(complete[-keep_last:]) if keep_last > 0 else set()
    latest = latest_checkpoint(root)
    if latest is not None:
        keep.add(latest)
    if keep_best:
        best = best_checkpoint(root, higher_is_better)
        if best is not None:
            keep.add(best)
    deleted = [p for p in complete if p not in keep]
    for path in deleted:
        shutil.rmtree(path, ignore_errors=True)
    for scratch in root.glob(f"{_SCRATCH}*"):
        if not scratch.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(scratch, ignore_errors=True)
    return deleted


def best_checkpoint(root: Path | str, higher_is_better: bool = True) -> Path | None:
    scored = []
    for path in list_checkpoints(root):
        score = json.loads((path / STATE_FILE).read_text()).get("eval_score")
        if isinstance(score, (int, float)):
            scored.append((score if higher_is_better else -score, path.name, path))
    return max(scored)[2] if scored else None


def _disk_full(exc: BaseException, root: Path) -> bool:
    """ENOSPC / EDQUOT anywhere in the chain, the words libraries use for it, or (torch.save only
    says "file write failed") a device with less than 1 MiB left while the scratch folder exists."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for error in chain:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(error) or "StorageFull" in str(error):
            return True
    try:
        usage = shutil.disk_usage(root)
    except OSError:
        return False
    return usage.free < (1 << 20)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _write_text_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)
