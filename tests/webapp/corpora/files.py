"""Upload files for the corpora tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

REPO = Path(__file__).resolve().parents[3]
SAMPLE_CORPUS = REPO / "samples" / "corpus"
SAMPLE_EVAL = REPO / "samples" / "eval"


def upload(name: str, content: bytes | str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


def long_text(seed: int, words: int = 80) -> str:
    vocab = ["river", "ferry", "mill", "bridge", "market", "wool", "charter", "lantern", "slate", "harbour",
             "sensor", "quarter", "revenue", "buoy", "station", "survey", "winter", "ice", "index", "page"]
    return " ".join(vocab[(seed * 7 + i * (seed % 5 + 1)) % len(vocab)] + str((seed * 31 + i) % 97) for i in range(words))


def jsonl(n: int, start: int = 0, cluster: str | None = None) -> str:
    return "".join(json.dumps({"text": long_text(i), "title": f"Doc {i}", **({"cluster": cluster} if cluster else {})}) + "\n"
                   for i in range(start, start + n))


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def sample_uploads() -> list[SimpleUploadedFile]:
    return [upload(p.name, p.read_bytes()) for p in sorted(SAMPLE_CORPUS.iterdir()) if p.is_file()]
