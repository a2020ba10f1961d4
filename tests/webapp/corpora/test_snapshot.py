"""write_training_corpus: the corpus file a run trains on (docs/architecture.md)."""

from __future__ import annotations

import hashlib

import pytest

from spell.data.ingest import document_sets, read_corpus_jsonl
from tests.webapp.corpora.files import SAMPLE_CORPUS, jsonl, upload
from webapp.corpora import services

pytestmark = pytest.mark.django_db


def test_it_writes_a_corpus_file_the_trainer_reads(team, tmp_path):
    corpus = services.create_corpus_from_paths(team, "Sample", [SAMPLE_CORPUS])
    path = tmp_path / "run" / "corpus.jsonl"

    info = services.write_training_corpus(corpus, path)

    records = read_corpus_jsonl(path)
    assert info == {"hash": hashlib.sha256(path.read_bytes()).hexdigest(), "documents": 38, "clusters": 4}
    sets = {s.id: s for s in document_sets(records)}
    assert set(sets) == {"harrowmere", "corvane", "osmir", "tessellate"}
    assert sets["corvane"].numeric and all(r.numeric for r in sets["corvane"].documents)
    assert not sets["osmir"].numeric
    assert {r.id for r in records} == set(corpus.documents.values_list("external_id", flat=True))


def test_the_hash_is_stable(team, tmp_path):
    corpus = services.create_corpus_from_paths(team, "Sample", [SAMPLE_CORPUS])

    assert services.write_training_corpus(corpus, tmp_path / "a.jsonl")["hash"] == \
        services.write_training_corpus(corpus, tmp_path / "b.jsonl")["hash"]


def test_it_refuses_a_corpus_that_is_not_ready(team, tmp_path):
    corpus = services.create_corpus_upload(team, "Pending", [upload("a.jsonl", jsonl(2))])

    with pytest.raises(ValueError, match="not ready"):
        services.write_training_corpus(corpus, tmp_path / "c.jsonl")
    assert not (tmp_path / "c.jsonl").exists()
