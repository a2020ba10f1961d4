"""What a run was made of: `OUT/provenance.json`, written once at the start of every attempt.

Enough to say later which code, packages, prompts, data and settings produced a checkpoint:
the code version (`git describe` when the code is a git checkout), the versions of the packages
that change numbers, the seed, the prompt-template version, a hash of the corpus file (with what decontamination left
out of it, when the worker checked it against the run's evaluation sets) and the resolved config.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import spell

PACKAGES = ("torch", "transformers", "tokenizers", "deepspeed", "xgrammar", "vllm", "numpy", "safetensors")


def code_version(root: str | os.PathLike | None = None) -> str:
    """`git describe --always --dirty --tags` of the checkout holding `spell`, else the package
    version ("0.1.0"). Never raises: provenance must not stop a run."""
    root = Path(root) if root is not None else Path(spell.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"spell-{spell.__version__}"


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (None for a package that is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prompt_version() -> str | None:
    try:
        from spell.prompts import PROMPT_VERSION
    except ImportError:  # prompts module not present (should not happen in a full checkout)
        return None
    return str(PROMPT_VERSION)


def corpus_provenance(corpus_path: str | os.PathLike) -> dict[str, Any]:
    """The corpus file's path and sha256, and, when the worker's decontamination report
    (spell/rundir.py DECONTAMINATION) lies beside it and is about this very file, what the
    snapshot left out as copies of the run's evaluation sets: counts and the first 50 titles."""
    from spell.rundir import DECONTAMINATION

    sha256 = file_sha256(corpus_path)
    entry: dict[str, Any] = {"path": str(corpus_path), "sha256": sha256}
    try:
        report = json.loads((Path(corpus_path).parent / DECONTAMINATION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return entry
    if isinstance(report, dict) and report.get("corpus_sha256") == sha256:
        from spell.data.decontam import report_summary

        entry["decontamination"] = report_summary(report)
    return entry


def build_provenance(
    *,
    config: dict[str, Any],
    seed: int,
    corpus_path: str | os.PathLike | None,
    model_path: str | None = None,
    attempt: int = 1,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "spell_version": spell.__version__,
        "code_version": code_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "seed": int(seed),
        "prompt_version": prompt_version(),
        "corpus": None if corpus_path is None else corpus_provenance(corpus_path),
        "model_path": model_path,
        "attempt": int(attempt),
        "config": config,
        **(extra or {}),
    }


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write to a temporary file and rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
