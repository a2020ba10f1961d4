"""Exact and near-duplicate detection (the paper's MinHash-LSH: 128 permutations, threshold 0.8).

Documents are visited in order; the first of a group of duplicates is kept and every later one is
reported with the id of the kept document it duplicates. Exact duplicates are found by a hash of
the normalised text, near duplicates by MinHash over word 5-gram shingles (lower-cased), with LSH
to find candidates and the MinHash Jaccard estimate to confirm them. Permutations are seeded, so
the same corpus always gives the same answer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from datasketch import MinHash, MinHashLSH

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DedupOptions:
    num_perm: int = 128
    threshold: float = 0.8
    shingle_words: int = 5
    seed: int = 1
    near: bool = True  # False: exact duplicates only


@dataclass(frozen=True)
class Duplicate:
    doc_id: str
    duplicate_of: str
    kind: str  # "exact" or "near"
    similarity: float  # 1.0 for exact; the MinHash Jaccard estimate for near


def shingles(text: str, size: int) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)}


def exact_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _MinHasher:
    """Builds MinHashes that share one set of seeded permutations (creating them per document
    would dominate the run time)."""

    def __init__(self, options: DedupOptions):
        template = MinHash(num_perm=options.num_perm, seed=options.seed, scheme="affine32")
        self._permutations = template.permutations
        self._options = options

    def __call__(self, text: str) -> MinHash:
        minhash = MinHash(num_perm=self._options.num_perm, seed=self._options.seed,
                          permutations=self._permutations, scheme="affine32")
        minhash.update_batch(shingles(text, self._options.shingle_words))
        return minhash


def find_duplicates(
    ids: Sequence[str],
    texts: Sequence[str],
    options: DedupOptions = DedupOptions(),
    on_progress: Callable[[int], None] | None = None,
) -> list[Duplicate]:
    """Return one `Duplicate` per document to drop; every other document is kept."""
    if len(ids) != len(texts):
        raise ValueError("ids and texts differ in length")
    first_by_hash: dict[str, str] = {}
    lsh = MinHashLSH(threshold=options.threshold, num_perm=options.num_perm) if options.near else None
    kept_minhashes: dict[str, MinHash] = {}
    minhasher = _MinHasher(options) if options.near else None
    duplicates: list[Duplicate] = []
    for index, (doc_id, text) in enumerate(zip(ids, texts)):
        key = exact_key(text)
        if key in first_by_hash:
            duplicates.append(Duplicate(doc_id, first_by_hash[key], "exact", 1.0))
        elif lsh is not None and minhasher is not None:
            minhash = minhasher(text)
            best = _closest_kept(minhash, lsh.query(minhash), kept_minhashes)
            if best is not None and best[1] >= options.threshold:
                duplicates.append(Duplicate(doc_id, best[0], "near", round(best[1], 4)))
                # A later exact copy of this text then points straight at the kept document.
                first_by_hash[key] = best[0]
            else:
                first_by_hash[key] = doc_id
                lsh.insert(doc_id, minhash)
                kept_minhashes[doc_id] = minhash
        else:
            first_by_hash[key] = doc_id
        if on_progress is not None:
            on_progress(index + 1)
    return duplicates


def _closest_kept(minhash: MinHash, candidates: list[str],
                  kept: dict[str, MinHash]) -> tuple[str, float] | None:
    """LSH candidates are probable matches; confirm with the Jaccard estimate, highest first
    (ties go to the lower id so results do not depend on set order)."""
    if not candidates:
        return None
    scored = [(candidate, minhash.jaccard(kept[candidate])) for candidate in candidates]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[0]
