"""Time the corpus ingest per stage on N synthetic documents.

    .venv/bin/python bench/ingest.py --docs 2000 --words 300

Documents are generated from topic vocabularies (so clustering has structure to find), with 5%
near-duplicates and 10% table-heavy "report" documents (so dedup and the numeric detector do real
work). They are written as one JSONL file and ingested from disk, like an upload. Prints seconds
per stage (from the progress callback's stage changes) and the ingest's own summary.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spell.data.ingest import STAGES, ingest  # noqa: E402

def _pseudo_words(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice("abcdefghijklmnoprstuvwy") for _ in range(rng.randint(4, 9))) for _ in range(count)]


# A realistic vocabulary size: 20 topics of 300 words each over a shared pool of 3,000 words.
_VOCAB_RNG = random.Random(12345)
TOPIC_WORDS = [_pseudo_words(_VOCAB_RNG, 300) for _ in range(20)]
COMMON = _pseudo_words(_VOCAB_RNG, 3000)


def synthetic_document(rng: random.Random, topics: int, words: int) -> tuple[str, bool]:
    topic = TOPIC_WORDS[rng.randrange(topics)]
    if rng.random() < 0.10:
        rows = [f"| {rng.choice(topic)} | {rng.uniform(1, 500):.1f} | {rng.uniform(1, 500):.1f} |"
                for _ in range(words // 12)]
        return "Figures in millions.\n" + "\n".join(rows), True
    body = [rng.choice(topic) if rng.random() < 0.35 else rng.choice(COMMON) + str(rng.randint(0, 9))
            for _ in range(words)]
    paragraphs = [" ".join(body[i:i + 60]) + "." for i in range(0, words, 60)]
    return "\n\n".join(paragraphs), False


def write_corpus(path: Path, docs: int, words: int, seed: int) -> None:
    rng = random.Random(seed)
    texts: list[str] = []
    with open(path, "w") as out:
        for index in range(docs):
            if texts and rng.random() < 0.05:  # a lightly edited copy of an earlier document
                words_of = rng.choice(texts).split(" ")
                words_of[rng.randrange(len(words_of))] = "edited"
                text = " ".join(words_of)
            else:
                text, _ = synthetic_document(rng, len(TOPIC_WORDS), words)
            texts.append(text)
            out.write(json.dumps({"id": f"s{index}", "text": text}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "synthetic.jsonl"
        write_corpus(path, args.docs, args.words, args.seed)
        size_mb = path.stat().st_size / 1e6

        # Wall time and this process's CPU time: on a shared machine the CPU column is the one
        # that does not move with the neighbours' load.
        stage_started: dict[str, tuple[float, float]] = {}
        progress_calls = 0

        def progress(stage: str, done: int, total: int) -> None:
            nonlocal progress_calls
            progress_calls += 1
            stage_started.setdefault(stage, (time.perf_counter(), time.process_time()))

        start = (time.perf_counter(), time.process_time())
        result = ingest([path], progress=progress)
        end = (time.perf_counter(), time.process_time())

    marks = [stage_started[s] for s in STAGES] + [end]
    print(f"{args.docs} documents x ~{args.words} words ({size_mb:.1f} MB JSONL), seed {args.seed}")
    print(f"  {'stage':<10} {'wall s':>7} {'cpu s':>7}")
    for stage, begin, finish in zip(STAGES, marks, marks[1:]):
        print(f"  {stage:<10} {finish[0] - begin[0]:7.2f} {finish[1] - begin[1]:7.2f}")
    wall = end[0] - start[0]
    print(f"  {'total':<10} {wall:7.2f} {end[1] - start[1]:7.2f}   ({args.docs / wall:.0f} docs/s wall, "
          f"{progress_calls} progress calls)")
    stats = result.stats
    print(f"kept {stats.documents}, dropped {stats.dropped_duplicates} duplicates and "
          f"{stats.dropped_length} by length; {stats.clusters} clusters "
          f"(sizes {min(c.size for c in result.clusters)}-{max(c.size for c in result.clusters)}), "
          f"{stats.numeric_clusters} numeric; {stats.tokens} tokens ({stats.token_counter})")


if __name__ == "__main__":
    main()
