"""ingest() end to end on samples/corpus, and on uploads with problems."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from spell.data.clustering import ClusterOptions
from spell.data.ingest import STAGES, IngestOptions, ingest
from spell.data.normalize import NormalizeOptions
from spell.data.readers import ErrorReason

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "corpus"
WORDS = ("station water temperature summer survey team fish cove june buoy oxygen lake ice "
         "record depth net count spring autumn shore boat").split()


def varied_text(seed: int, words: int = 120) -> str:
    """Distinct documents (no shared 5-grams to speak of), deterministic per seed."""
    import random

    rng = random.Random(seed)
    return " ".join(f"{rng.choice(WORDS)}{rng.randint(0, 99)}" for _ in range(words))


class FakeTokenizer:
    """The slice of the Hugging Face tokenizer API that ingest uses."""

    name_or_path = "fake/char-tokenizer"

    def __init__(self):
        self.calls = 0

    def __call__(self, texts, add_special_tokens=True):
        assert add_special_tokens is False
        self.calls += 1
        return {"input_ids": [list(range(len(text) // 4)) for text in texts]}


@pytest.fixture(scope="module")
def sample_result():
    events: list[tuple[str, int, int]] = []
    result = ingest([SAMPLES], progress=lambda stage, done, total: events.append((stage, done, total)))
    return result, events


def test_the_sample_corpus_ingests_into_its_four_clusters(sample_result):
    result, _ = sample_result
    assert result.errors == [] and result.dropped == []
    assert result.stats.files == 3 and result.stats.documents == 38
    assert {c.id: c.size for c in result.clusters} == {"corvane": 10, "harrowmere": 10, "osmir": 10, "tessellate": 8}
    assert [c.id for c in result.clusters if c.numeric] == ["corvane"]
    assert all(c.given for c in result.clusters)
    assert {d.cluster for d in result.documents if d.numeric} == {"corvane"}


def test_markdown_files_bring_their_front_matter(sample_result):
    result, _ = sample_result
    ferry = next(d for d in result.documents if d.id == "harrowmere-10")
    assert ferry.cluster == "harrowmere"
    assert ferry.title == "Jonah Pell's rope ferry, 1887-1891"
    assert ferry.source == "harrowmere-ferry.md"


def test_without_a_tokenizer_counts_are_a_labelled_estimate(sample_result):
    result, _ = sample_result
    assert result.stats.token_counter.startswith("whitespace estimate")
    assert any("not a real tokenizer" in note for note in result.notes)
    doc = result.documents[0]
    assert doc.tokens == -(-len(doc.text.split()) * 13 // 10)  # ceil(words * 1.3)
    assert result.stats.tokens == sum(d.tokens for d in result.documents)
    assert sum(c.tokens for c in result.clusters) == result.stats.tokens


def test_the_length_histogram_covers_every_document(sample_result):
    result, _ = sample_result
    bins = result.stats.length_histogram
    assert sum(b.count for b in bins) == 38
    assert bins[0].low == 0 and bins[-1].high is None
    for doc in result.documents:
        assert sum(1 for b in bins if b.low <= doc.tokens and (b.high is None or doc.tokens < b.high)) == 1


def test_progress_walks_through_every_stage_in_order(sample_result):
    _, events = sample_result
    stages = [stage for stage, _, _ in events]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == list(STAGES)
    for stage in STAGES:
        mine = [(done, total) for s, done, total in events if s == stage]
        assert mine[0][0] == 0 and mine[-1][0] == mine[-1][1]
        assert [d for d, _ in mine] == sorted(d for d, _ in mine)
    assert ("read", 3, 3) in events


def test_the_result_serialises_to_json_without_texts(sample_result):
    result, _ = sample_result
    summary = json.loads(json.dumps(result.to_dict()))
    assert len(summary["documents"]) == 38 and "text" not in summary["documents"][0]
    assert summary["stats"]["clusters"] == 4


def test_it_uses_a_given_tokenizer_in_batches():
    tokenizer = FakeTokenizer()
    result = ingest([SAMPLES / "sample.jsonl"], tokenizer=tokenizer)
    assert result.stats.token_counter == "tokenizer fake/char-tokenizer"
    assert all(d.tokens == len(d.text) // 4 for d in result.documents)
    assert tokenizer.calls == 1  # 36 documents fit one batch of 64
    assert not any("not a real tokenizer" in note for note in result.notes)


def test_it_detects_numeric_clusters_when_the_file_does_not_say(tmp_path: Path):
    lines = [json.loads(line) for line in (SAMPLES / "sample.jsonl").read_text().splitlines()]
    for line in lines:
        del line["numeric"]
    path = tmp_path / "unflagged.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    result = ingest([path])
    assert [c.id for c in result.clusters if c.numeric] == ["corvane"]
    assert sum(d.numeric_document for d in result.documents) == 10


def test_it_clusters_documents_the_file_did_not_group(tmp_path: Path):
    lines = [json.loads(line) for line in (SAMPLES / "sample.jsonl").read_text().splitlines()]
    topics = {}
    for line in lines:
        topics[line["id"]] = line.pop("cluster")
        del line["numeric"]
    path = tmp_path / "ungrouped.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    options = IngestOptions(clustering=ClusterOptions(target_size=10))
    first = ingest([path], options=options)
    second = ingest([path], options=options)
    assert [d.cluster for d in first.documents] == [d.cluster for d in second.documents]
    assert len(first.clusters) == 4 and all(not c.given for c in first.clusters)
    for cluster in first.clusters:
        assert len({topics[d.id] for d in first.documents if d.cluster == cluster.id}) == 1
    assert sum(c.numeric for c in first.clusters) == 1


def test_bad_files_short_documents_and_duplicates_are_reported_not_fatal(tmp_path: Path):
    good = varied_text(1)
    (tmp_path / "a.txt").write_text(good)
    near = good.split()
    near[60] = "changed"
    (tmp_path / "b.txt").write_text(" ".join(near))  # a near duplicate of a.txt
    (tmp_path / "c.txt").write_text("too short")
    (tmp_path / "d.bin").write_bytes(b"\x00\x01")
    upload = io.BytesIO(good.encode())
    upload.name = "again.txt"  # same bytes as a.txt
    result = ingest([tmp_path, upload])
    assert [d.id for d in result.documents] == ["d0"]
    assert [(e.source, e.reason) for e in result.errors] == [("d.bin", ErrorReason.UNSUPPORTED_TYPE),
                                                             ("again.txt", ErrorReason.DUPLICATE_FILE)]
    assert [(d.id, d.reason, d.duplicate_of) for d in result.dropped] == [
        ("d2", "too_short", None), ("d1", "near_duplicate", "d0")]
    assert result.stats.files == 5 and result.stats.files_with_errors == 2
    assert result.stats.dropped_duplicates == 1 and result.stats.dropped_length == 1
    assert len(result.clusters) == 1 and result.clusters[0].size == 1


def test_given_ids_are_kept_and_repeats_get_fresh_ones(tmp_path: Path):
    records = [{"id": "x", "text": varied_text(i)} for i in range(3)] + [{"text": varied_text(3)}]
    path = tmp_path / "ids.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    result = ingest([path], options=IngestOptions(normalize=NormalizeOptions(min_chars=10)))
    assert [d.id for d in result.documents] == ["x", "d0", "d1", "d2"]
    assert any("repeated" in note for note in result.notes)


def test_a_raising_progress_callback_stops_the_ingest():
    def cancel(stage, done, total):
        if stage == "dedup":
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        ingest([SAMPLES], progress=cancel)


def test_an_empty_upload_gives_an_empty_result():
    result = ingest([])
    assert result.documents == [] and result.clusters == [] and result.stats.tokens == 0


def test_ingest_does_not_import_django():
    code = ("import sys; from spell.data.ingest import ingest; ingest([]); "
            "assert not any(m == 'django' or m.startswith(('django.', 'webapp', 'workers')) for m in sys.modules)")
    import subprocess

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parents[3])
    assert completed.returncode == 0, completed.stderr


def test_with_an_embedding_model_the_embed_stage_reports_documents_embedded(tmp_path: Path):
    from spell.data.embeddings import Embedder
    from tests.spell.data.tiny_embedder import make_embedding_folder

    embedder = Embedder(make_embedding_folder(tmp_path / "tiny"), batch_size=4)
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": varied_text(i)}) + "\n" for i in range(10)))
    events = []
    ingest([tmp_path / "docs.jsonl"], options=IngestOptions(clustering=ClusterOptions(target_size=5, embedder=embedder)),
           progress=lambda *event: events.append(event))

    stages = [s for i, (s, _, _) in enumerate(events) if i == 0 or events[i - 1][0] != s]
    assert stages == [*STAGES[:-1], "embed", "cluster"]
    assert [e for e in events if e[0] == "embed"] == [("embed", 0, 10), ("embed", 4, 10), ("embed", 8, 10), ("embed", 10, 10)]
