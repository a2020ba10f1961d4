"""A tiny Hugging Face embedding folder for tests: a 1-layer BERT (32 dimensions, random weights,
seeded) with the bundled all-MiniLM-L6-v2 tokenizer. Made in well under a second."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def make_embedding_folder(folder: Path, pooling: str | None = None) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    from spell.data.embeddings import model_dir

    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(model_dir() / name, folder / name)
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                         max_position_embeddings=128)).save_pretrained(folder)
    if pooling is not None:
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({f"pooling_mode_{pooling}": True}))
    return folder
