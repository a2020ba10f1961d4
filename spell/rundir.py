"""The run directory: what lives where in OUT, and who may write it. One contract for the three
layers (the training process, the worker that supervises it, the web app that shows it); torch-free
so that the web app can import it.

    OUT/studio-config.json      the frozen config the worker hands over (the process writes config.json)
    OUT/config.json             the resolved config the process ran with
    OUT/corpus.jsonl            the corpus snapshot the run trains on (written once, at the first attempt)
    OUT/eval/                   the run's evaluation sets, copied at the first attempt
    OUT/decontamination.json    which corpus documents the snapshot left out as copies of evaluation text
    OUT/events.jsonl            the event stream (docs/events.md); OUT/heartbeat.json the latest beat
    OUT/logs/attempt-N.log      stdout and stderr of attempt N
    OUT/checkpoints/step-NNNNNN/  a checkpoint (model/, state.json, optimizer.pt or deepspeed/)
    OUT/checkpoints/latest      the name of the newest complete checkpoint
    OUT/attempt                 the fence: the attempt that owns the folder now

The fence: the worker writes OUT/attempt before it starts attempt N; a training process of attempt
M != N that is still alive (its worker lost the database long enough for the run to be requeued)
sees it and stops before its next write, so two attempts never write one run folder. A folder
without the file (the CLI on its own) belongs to whoever writes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STUDIO_CONFIG = "studio-config.json"
CONFIG = "config.json"
CORPUS = "corpus.jsonl"
EVAL_DIR = "eval"
DECONTAMINATION = "decontamination.json"
EVENTS = "events.jsonl"
HEARTBEAT = "heartbeat.json"
LOGS = "logs"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
FENCE = "attempt"

CHECKPOINT_PREFIX = "step-"
STATE_FILE = "state.json"
MODEL_DIR = "model"


def attempt_log(root: Path | str, attempt: int) -> Path:
    return Path(root) / LOGS / f"attempt-{attempt}.log"


# --------------------------------------------------------------------------- checkpoints


def checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{step:06d}"


def checkpoint_step(name: str) -> int | None:
    if not name.startswith(CHECKPOINT_PREFIX):
        return None
    try:
        return int(name[len(CHECKPOINT_PREFIX):])
    except ValueError:
        return None


def is_complete(path: Path) -> bool:
    """Complete = renamed into place (not a scratch folder) with a readable state and a model."""
    if not path.is_dir() or checkpoint_step(path.name) is None:
        return False
    if not (path / MODEL_DIR / "config.json").is_file():
        return False
    try:
        json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return True


def list_checkpoints(checkpoints: Path | str) -> list[Path]:
    """Complete checkpoints in a checkpoints/ folder, oldest step first; partial ones are skipped."""
    root = Path(checkpoints)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if is_complete(p)), key=lambda p: p.name)


def latest_checkpoint(checkpoints: Path | str) -> Path | None:
    """What `latest` names if that checkpoint is complete, else the newest complete one."""
    root = Path(checkpoints)
    pointer = root / LATEST
    try:
        named = root / pointer.read_text().strip()
        if is_complete(named):
            return named
    except OSError:
        pass
    complete = list_checkpoints(root)
    return complete[-1] if complete else None


def resume_step(run_dir: Path | str) -> int | None:
    """The step a new attempt of this run resumes from; None = from the start."""
    latest = latest_checkpoint(Path(run_dir) / CHECKPOINTS)
    return checkpoint_step(latest.name) if latest is not None else None


# --------------------------------------------------------------------------- the fence


def claim(run_dir: Path | str, attempt: int) -> None:
    """The worker, before it starts attempt `attempt`: from now on only that attempt writes here."""
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{FENCE}.{os.getpid()}.tmp"
    tmp.write_text(f"{int(attempt)}\n")
    os.replace(tmp, root / FENCE)


def owner(run_dir: Path | str) -> int | None:
    """The attempt that owns the folder, None when no worker claimed it (or the file is unreadable)."""
    try:
        return int((Path(run_dir) / FENCE).read_text().strip())
    except (OSError, ValueError):
        return None


def owns(run_dir: Path | str, attempt: int) -> bool:
    held = owner(run_dir)
    return held is None or held == int(attempt)
