"""Clustering by TF-IDF and by sentence embeddings, and decontamination's recall on planted copies.

    .venv/bin/python bench/clustering.py [--docs 2000] [--plants 450] [--no-embeddings]

1. Clustering (spell.data.clustering, the ingest's defaults: sets of ~20, at least 5) of
   (a) samples/corpus/sample.jsonl without its cluster field (its 4 towns are the topics) and
   (b) `--docs` synthetic documents written from a fixed seed: 8 topics in plain English (so a
   sentence-embedding model has meaning to find), each topic's words split into two synonym-like
   halves a document draws mostly from one of, over shared everyday words. For each: the time
   (the embedding separately), documents per set (min / mean / max) and two coherence scores:
   purity (the share of documents in their set's majority topic; the topics are known) and the
   mean cosine similarity of pairs within a set under a fixed reference embedding (all-MiniLM-L6-v2
   and TF-IDF: each favours its own clustering, so both are shown), beside the same scores for
   random sets of the same sizes.
2. Decontamination (spell.data.decontam: a shared 13-word run, as implemented; the issue asked
   for MinHash-LSH at Jaccard 0.8, 128 permutations, which is measured beside it on the same
   documents): `--plants` edited copies of items of the held-out town sets (samples/eval) are
   planted into a clean corpus (the synthetic documents, sample.jsonl, and 200 documents about
   other towns written by the same generator: same sentence frames, other facts). Recall per kind
   of edit, and false positives on the clean documents.

Prints Markdown tables (for docs/benchmarks.md) and the machine's load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spell.data.clustering import ClusterOptions, _vectorize, cluster_documents  # noqa: E402
from spell.data.decontam import EvalIndex  # noqa: E402
from spell.data.evalsets import read_eval_set  # noqa: E402

# -- synthetic documents -------------------------------------------------------------------------

# Each topic: two halves of related words (a document leans on one), so meaning and shared words
# part ways a little, as they do in real text.
TOPICS = {
    "sea travel": ("ferry harbour sail deck captain crew tide anchor voyage port".split(),
                   "boat quay rowing oar sailor mast wharf current shore vessel".split()),
    "finance": ("revenue profit dividend shareholder earnings quarter margin forecast investor audit".split(),
                "income budget loan interest bank debt credit payment account tax".split()),
    "weather": ("storm rain thunder cloud wind forecast drizzle gale lightning flood".split(),
                "snow frost ice blizzard sleet hail temperature chill winter fog".split()),
    "cooking": ("oven bread flour dough bake butter sugar pastry cake recipe".split(),
                "soup pan onion garlic simmer stew spice pepper broth kettle".split()),
    "astronomy": ("telescope star planet orbit galaxy comet nebula moon eclipse astronomer".split(),
                  "sky constellation meteor observatory asteroid sun satellite cosmos light horizon".split()),
    "medicine": ("doctor patient hospital nurse surgery fever treatment clinic diagnosis medicine".split(),
                 "illness symptom infection vaccine therapy pill wound recovery pharmacy pulse".split()),
    "football": ("goal striker referee match stadium league penalty keeper pitch coach".split(),
                 "team score player season cup tackle fans kick final whistle".split()),
    "computing": ("software program code compiler database server network algorithm bug keyboard".split(),
                  "computer processor memory laptop screen file internet data chip disk".split()),
}
EVERYDAY = ("people day town morning evening week year friend family place house street report group "
            "time work road window door table letter story news market child water field").split()
VERBS = "saw found kept moved needed watched carried checked described noticed prepared followed".split()
ADJECTIVES = "old new small large early late quiet busy careful long short bright".split()
TEMPLATES = [
    "The {a} {w} {v} the {w} near the {e}.", "Every {e} the {w} and the {w} {v} a {a} {w}.",
    "A {a} {w} {v} the {e} before the {w}.", "They {v} the {w} while the {w} {v} the {e}.",
    "In the {e} a {w} {v} the {a} {w} and the {w}.", "Nobody {v} the {w}, but the {e} {v} a {w}.",
]


TOPICAL = 0.35  # share of the content-word slots that take a topic word (the others: everyday words)
NOISE = 0.35  # share of those that take a word of a random topic instead of the document's own


def synthetic_corpus(n: int, seed: int = 2026) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    names = list(TOPICS)
    texts, topics = [], []
    for index in range(n):
        topic = names[index % len(names)]
        lean = rng.random() < 0.5
        main, other = TOPICS[topic] if lean else TOPICS[topic][::-1]

        def topic_word():
            roll = rng.random()
            if roll < NOISE:  # a word of another topic: documents mention other things too
                return rng.choice(TOPICS[rng.choice(names)][rng.random() < 0.5])
            return rng.choice(main if roll < 0.8 else other)

        sentences = []
        for _ in range(rng.randint(6, 10)):
            template = rng.choice(TEMPLATES)
            sentences.append(re.sub(r"\{(\w)\}", lambda m: {
                "w": topic_word() if rng.random() < TOPICAL else rng.choice(EVERYDAY),
                "e": rng.choice(EVERYDAY), "v": rng.choice(VERBS), "a": rng.choice(ADJECTIVES)}[m.group(1)], template))
        texts.append(" ".join(sentences))
        topics.append(topic)
    order = list(range(n))
    rng.shuffle(order)  # topics not in input order
    return [texts[i] for i in order], [topics[i] for i in order]


def sample_corpus() -> tuple[list[str], list[str]]:
    records = [json.loads(line) for line in (ROOT / "samples" / "corpus" / "sample.jsonl").read_text().splitlines()
               if line.strip()]
    return [r["text"] for r in records], [r["cluster"] for r in records]


# -- coherence -------------------------------------------------------------------------------------


def purity(groups: list[list[int]], topics: list[str]) -> float:
    return sum(Counter(topics[i] for i in g).most_common(1)[0][1] for g in groups) / sum(len(g) for g in groups)


def intra_cosine(groups: list[list[int]], vectors: np.ndarray) -> float:
    """Mean cosine similarity of the pairs within a set (rows are unit vectors), pairs weighted alike."""
    total, pairs = 0.0, 0
    for g in groups:
        if len(g) < 2:
            continue
        block = vectors[g]
        s = block.sum(0)
        total += float(s @ s - (block * block).sum()) / 2
        pairs += len(g) * (len(g) - 1) // 2
    return total / pairs if pairs else float("nan")


def random_groups(sizes: list[int], n: int, seed: int = 7) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    groups, start = [], 0
    for size in sizes:
        groups.append(order[start:start + size])
        start += size
    return groups


def tfidf_reference(texts: list[str]) -> np.ndarray:
    from sklearn.preprocessing import normalize

    matrix, _ = _vectorize(texts, ClusterOptions())
    return normalize(matrix).toarray().astype(np.float32)


# -- decontamination -------------------------------------------------------------------------------

EDITS = ("verbatim in a longer document", "one town's paragraph in a document", "2 words changed",
         "one paragraph, 2 words changed, in a document", "sentences reordered", "60-word excerpt in a document",
         "question and answer in a document", "a word changed every 20", "a word changed every 10 (heavy)")


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;])\s+", text) if s]


def plant(item, edit: str, rng: random.Random, filler) -> str:
    context = item.context
    paragraphs = [p for p in context.split("\n\n") if len(p.split()) > 20]
    words = context.split()
    if edit == "verbatim in a longer document":
        return f"{filler()} {context} {filler()}"
    if edit == "one town's paragraph in a document":
        return f"{filler()} {rng.choice(paragraphs)} {filler()}"
    if edit == "2 words changed":
        for position in rng.sample(range(len(words)), 2):
            words[position] = rng.choice(EVERYDAY)
        return " ".join(words)
    if edit == "one paragraph, 2 words changed, in a document":
        paragraph = rng.choice(paragraphs).split()
        for position in rng.sample(range(len(paragraph)), 2):
            paragraph[position] = rng.choice(EVERYDAY)
        return f"{filler()} {' '.join(paragraph)} {filler()}"
    if edit == "sentences reordered":
        sentences = _sentences(context.replace("\n\n", " "))
        rng.shuffle(sentences)
        return " ".join(sentences)
    if edit == "60-word excerpt in a document":
        start = rng.randrange(max(1, len(words) - 60))
        return f"{filler()} {' '.join(words[start:start + 60])} {filler()}"
    if edit == "question and answer in a document":
        answer = item.choices["ABCD".index(item.answers[0])] if item.task == "doc_mc" else item.answers[0]
        return f"{filler()} {item.question} {answer}. {filler()}"
    if edit.startswith("a word changed every"):
        every = int(edit.split()[4])
        offset = rng.randrange(every)
        return " ".join(rng.choice(EVERYDAY) if i % every == offset else w for i, w in enumerate(words))
    raise ValueError(edit)


class MinHashIndex:
    """The issue's method: MinHash-LSH (128 permutations, Jaccard 0.8) over 5-word shingles of the
    items' contexts and questions (spell.data.dedup's shingles and hashing)."""

    def __init__(self, items, threshold: float = 0.8, num_perm: int = 128):
        from datasketch import MinHashLSH

        from spell.data.dedup import DedupOptions, _MinHasher

        self.hasher = _MinHasher(DedupOptions(num_perm=num_perm, threshold=threshold))
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.threshold, self.hashes = threshold, {}
        for k, item in enumerate(items):
            for part, text in (("context", item.context), ("question", item.question)):
                key = f"{k}-{part}"
                self.hashes[key] = self.hasher(text)
                self.lsh.insert(key, self.hashes[key])

    def contaminated(self, text: str) -> bool:
        minhash = self.hasher(text)
        return any(minhash.jaccard(self.hashes[key]) >= self.threshold for key in self.lsh.query(minhash))


def other_towns(n: int, seed: int = 999) -> list[str]:
    """Documents about towns the evaluation sets do not have, from their own generator."""
    spec = importlib.util.spec_from_file_location("make_heldout_sets", ROOT / "scripts" / "make_heldout_sets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng, used, names, docs = random.Random(seed), set(), set(), []
    while len(docs) < n:
        name = module.word(rng) + rng.choice(module.TOWN_ENDS)
        if name not in names:
            names.add(name)
            docs.append(module.document(module.make_town(rng, name, used)))
    return docs


# -- main ------------------------------------------------------------------------------------------


def cluster(texts, method: str, embedder, target_size: int) -> tuple[list[list[int]], float, float, np.ndarray | None]:
    """(sets, seconds in all, seconds embedding, the embeddings)."""
    captured, seconds_embed = {}, 0.0
    options = ClusterOptions(target_size=target_size)
    if method == "embeddings":
        def capture(batch, on_progress=None):
            nonlocal seconds_embed
            start = time.perf_counter()
            captured["vectors"] = embedder(batch, on_progress=on_progress)
            seconds_embed = time.perf_counter() - start
            return captured["vectors"]
        options = ClusterOptions(target_size=target_size, embedder=capture)
    start = time.perf_counter()
    result = cluster_documents(texts, None, options)
    return [g.members for g in result.groups], time.perf_counter() - start, seconds_embed, captured.get("vectors")


def cluster_row(name: str, texts, topics, method: str, groups, seconds, seconds_embed, references) -> dict:
    sizes = [len(g) for g in groups]
    rand = random_groups(sizes, len(texts))
    row = {"corpus": name, "method": method, "docs": len(texts), "seconds": seconds, "embed_seconds": seconds_embed,
           "sets": len(groups), "min": min(sizes), "mean": sum(sizes) / len(sizes), "max": max(sizes),
           "purity": purity(groups, topics), "random_purity": purity(rand, topics)}
    for ref_name, vectors in references.items():
        row[f"cos_{ref_name}"] = intra_cosine(groups, vectors)
        row[f"random_cos_{ref_name}"] = intra_cosine(rand, vectors)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--plants", type=int, default=450)
    parser.add_argument("--no-embeddings", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f}", flush=True)

    corpora = {"sample.jsonl": sample_corpus(), f"synthetic {args.docs}": synthetic_corpus(args.docs)}
    # sample.jsonl has 4 towns of 8-10 documents: sets of ~10 (at the default 20 it gets 2 sets for 4 topics)
    targets = {"sample.jsonl": 10, f"synthetic {args.docs}": ClusterOptions.target_size}
    embedder = None
    if not args.no_embeddings:
        from spell.data.embeddings import MiniLM

        embedder = MiniLM()
        start = time.perf_counter()
        embedder(["load the model"])
        print(f"# all-MiniLM-L6-v2 loaded in {time.perf_counter() - start:.1f} s", flush=True)
    rows = []
    for name, (texts, topics) in corpora.items():
        runs = {}
        for method in ("tfidf", "embeddings") if embedder is not None else ("tfidf",):
            runs[method] = cluster(texts, method, embedder, targets[name])
            print(f"# {name}, {method}: {runs[method][1]:.1f} s", flush=True)
        # the reference embeddings: TF-IDF, and MiniLM's own vectors (deterministic: those it clustered)
        references = {"tfidf": tfidf_reference(texts)}
        if "embeddings" in runs:
            references["minilm"] = runs["embeddings"][3]
        for method, (groups, seconds, seconds_embed, _) in runs.items():
            rows.append(cluster_row(name, texts, topics, method, groups, seconds, seconds_embed, references))
            print(f"# {rows[-1]}", flush=True)

    print("\n| corpus (target set size) | clustering | docs | time s (embedding) | sets | docs per set min / mean / max | purity (random) "
          "| intra-set cosine, MiniLM ref (random) | intra-set cosine, TF-IDF ref (random) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        method = "TF-IDF + SVD + k-means" if r["method"] == "tfidf" else "all-MiniLM-L6-v2 + k-means"
        timing = f"{r['seconds']:.2f}" + (f" ({r['embed_seconds']:.2f})" if r["method"] == "embeddings" else "")
        minilm = (f"{r['cos_minilm']:.3f} ({r['random_cos_minilm']:.3f})" if "cos_minilm" in r else "–")
        print(f"| {r['corpus']} ({targets[r['corpus']]}) | {method} | {r['docs']} | {timing} | {r['sets']} | {r['min']} / {r['mean']:.1f} / "
              f"{r['max']} | {r['purity']:.3f} ({r['random_purity']:.3f}) | {minilm} | "
              f"{r['cos_tfidf']:.3f} ({r['random_cos_tfidf']:.3f}) |")

    # decontamination
    items = [*read_eval_set(ROOT / "samples" / "eval" / "heldout_towns_mc.json"),
             *read_eval_set(ROOT / "samples" / "eval" / "heldout_towns_qa.jsonl")]
    rng = random.Random(31)
    synthetic = corpora[f"synthetic {args.docs}"][0]

    def filler() -> str:
        return rng.choice(synthetic)

    planted = []
    for k in range(args.plants):
        edit = EDITS[k % len(EDITS)]
        planted.append((edit, plant(rng.choice(items), edit, rng, filler)))
    towns = other_towns(200)
    clean = {"synthetic": synthetic, "sample.jsonl": corpora["sample.jsonl"][0], "other towns (same generator)": towns}
    print(f"\n# decontamination: {len(items)} evaluation items (heldout-towns-mc + heldout-towns-qa), "
          f"{len(planted)} planted copies, {sum(map(len, clean.values()))} clean documents", flush=True)
    methods = {}
    start = time.perf_counter()
    methods["13-word run (implemented)"] = EvalIndex.from_items(items)
    index_seconds = {"13-word run (implemented)": time.perf_counter() - start}
    start = time.perf_counter()
    methods["MinHash-LSH 0.8, 128 perm (the issue's)"] = MinHashIndex(items)
    index_seconds["MinHash-LSH 0.8, 128 perm (the issue's)"] = time.perf_counter() - start
    results = {}
    for method, index in methods.items():
        start = time.perf_counter()
        found = defaultdict(int)
        for edit, text in planted:
            found[edit] += index.contaminated(text)
        false = {name: sum(index.contaminated(t) for t in texts) for name, texts in clean.items()}
        checked = len(planted) + sum(map(len, clean.values()))
        results[method] = (found, false, index_seconds[method], (time.perf_counter() - start) / checked * 1000)
    per_edit = Counter(edit for edit, _ in planted)
    print("\n| planted copy | n | " + " | ".join(f"recall, {m}" for m in methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for edit in EDITS:
        print(f"| {edit} | {per_edit[edit]} | " + " | ".join(
            f"{results[m][0][edit] / per_edit[edit]:.2f}" for m in methods) + " |")
    light = [e for e in EDITS if "heavy" not in e]
    print(f"| **all but the heavy edit** | {sum(per_edit[e] for e in light)} | " + " | ".join(
        f"**{sum(results[m][0][e] for e in light) / sum(per_edit[e] for e in light):.3f}**" for m in methods) + " |")
    print(f"| all | {len(planted)} | " + " | ".join(
        f"{sum(results[m][0].values()) / len(planted):.3f}" for m in methods) + " |")
    for name, texts in clean.items():
        print(f"| false positives: {name} | {len(texts)} | " + " | ".join(
            f"{results[m][1][name]}" for m in methods) + " |")
    print("| index build s / check ms per document | | " + " | ".join(
        f"{results[m][2]:.2f} / {results[m][3]:.2f}" for m in methods) + " |")
    print(f"\n# total {time.perf_counter() - began:.0f} s; load now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
