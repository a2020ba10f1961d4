"""Dedup on known near-duplicates: edited copies go, different documents stay."""

import random

from spell.data.dedup import DedupOptions, find_duplicates, shingles

WORDS = ("river mill bridge flood mayor school lantern ferry station museum ledger wool charter "
         "railway felt census chapel drovers lane wheel engineer festival stone arch town").split()


def essay(seed: int, length: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(length))


def edit(text: str, changes: int, seed: int) -> str:
    """Replace `changes` words: each touches at most 5 of the ~296 word 5-grams."""
    rng = random.Random(seed)
    words = text.split()
    for index in rng.sample(range(len(words)), changes):
        words[index] = "edited"
    return " ".join(words)


def test_shingles_are_lowercased_word_five_grams():
    assert shingles("A b c d e F", 5) == {b"a b c d e", b"b c d e f"}
    assert shingles("too short", 5) == {b"too short"}
    assert shingles("", 5) == set()


def test_it_drops_exact_copies_pointing_at_the_first():
    base = essay(1)
    duplicates = find_duplicates(["a", "b", "c"], [base, essay(2), base])
    assert [(d.doc_id, d.duplicate_of, d.kind, d.similarity) for d in duplicates] == [("c", "a", "exact", 1.0)]


def test_it_drops_lightly_edited_copies_and_keeps_heavily_edited_ones():
    base = essay(1)
    light = edit(base, 3, seed=7)  # Jaccard ~0.9
    heavy = edit(base, 60, seed=8)  # Jaccard well under 0.5
    duplicates = find_duplicates(["base", "other", "light", "heavy"], [base, essay(2), light, heavy])
    assert [(d.doc_id, d.duplicate_of, d.kind) for d in duplicates] == [("light", "base", "near")]
    assert 0.8 <= duplicates[0].similarity <= 1.0


def test_a_copy_of_a_dropped_document_points_at_the_kept_one():
    base = essay(3)
    light = edit(base, 2, seed=1)
    duplicates = find_duplicates(["k", "n", "n2"], [base, light, light])
    assert [(d.doc_id, d.duplicate_of) for d in duplicates] == [("n", "k"), ("n2", "k")]


def test_it_is_deterministic_for_a_seed():
    texts = [essay(i % 5) if i % 3 else edit(essay(i % 5), 4, i) for i in range(30)]
    ids = [f"d{i}" for i in range(30)]
    assert find_duplicates(ids, texts) == find_duplicates(ids, texts)


def test_exact_only_mode_keeps_near_copies():
    base = essay(4)
    options = DedupOptions(near=False)
    assert find_duplicates(["a", "b"], [base, edit(base, 2, 0)], options) == []


def test_it_reports_progress_per_document():
    seen = []
    find_duplicates(["a", "b", "c"], [essay(1), essay(2), essay(3)], on_progress=seen.append)
    assert seen == [1, 2, 3]
