"""The training corpus file (docs/architecture.md): write, read back, validate."""

import json
from pathlib import Path

import pytest

from spell.data.ingest import (CorpusFormatError, CorpusRecord, document_sets, ingest, read_corpus_jsonl,
                               write_corpus_jsonl)

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "corpus"


def test_an_ingest_result_round_trips(tmp_path: Path):
    result = ingest([SAMPLES])
    path = tmp_path / "corpus.jsonl"
    assert write_corpus_jsonl(result, path) == 38
    records = read_corpus_jsonl(path)
    assert [(r.id, r.text, r.title, r.cluster, r.numeric) for r in records] == [
        (d.id, d.text, d.title, d.cluster, d.numeric) for d in result.documents]
    assert not (tmp_path / "corpus.jsonl.partial").exists()


def test_lines_hold_exactly_the_contract_fields(tmp_path: Path):
    path = tmp_path / "corpus.jsonl"
    write_corpus_jsonl([CorpusRecord("d1", "text \u00e9", "c1", None, True)], path)
    line = path.read_text(encoding="utf-8").splitlines()[0]
    assert json.loads(line) == {"id": "d1", "text": "text \u00e9", "title": None, "cluster": "c1", "numeric": True}
    assert "\u00e9" in line  # written as UTF-8, not \\u escapes


def test_document_sets_group_by_cluster_and_any_numeric_marks_the_set():
    records = [CorpusRecord("a", "x", "c1"), CorpusRecord("b", "y", "c2", numeric=True),
               CorpusRecord("c", "z", "c1", numeric=True), CorpusRecord("d", "w", "c2")]
    sets = document_sets(records)
    assert [(s.id, [d.id for d in s.documents], s.numeric) for s in sets] == [
        ("c1", ["a", "c"], True), ("c2", ["b", "d"], True)]


@pytest.mark.parametrize(
    "lines, line_number, message",
    [
        (['{"id": "a", "text": "t", "cluster": "c"}', "{oops"], 2, "not valid JSON"),
        (['["a"]'], 1, "expected a JSON object"),
        (['{"text": "t", "cluster": "c"}'], 1, "'id' must be a non-empty string"),
        (['{"id": "a", "text": "", "cluster": "c"}'], 1, "'text' must be a non-empty string"),
        (['{"id": "a", "text": "t"}'], 1, "'cluster' must be a non-empty string"),
        (['{"id": "a", "text": "t", "cluster": "c", "numeric": "yes"}'], 1, "'numeric' must be true or false"),
        (['{"id": "a", "text": "t", "cluster": "c", "title": 3}'], 1, "'title' must be a string or null"),
        (['{"id": "a", "text": "t", "cluster": "c"}', "", '{"id": "a", "text": "u", "cluster": "c"}'], 3,
         "id 'a' already used on line 1"),
    ],
)
def test_bad_lines_are_named_with_their_number(tmp_path: Path, lines, line_number, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError) as caught:
        read_corpus_jsonl(path)
    assert caught.value.line == line_number
    assert message in str(caught.value)
    assert f"line {line_number}" in str(caught.value)


def test_an_empty_corpus_file_is_an_error(tmp_path: Path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(CorpusFormatError, match="no documents"):
        read_corpus_jsonl(path)


def test_invalid_utf8_is_an_error(tmp_path: Path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"id": "a", "text": "caf\xe9", "cluster": "c"}\n')
    with pytest.raises(CorpusFormatError, match="line 1: not UTF-8"):
        read_corpus_jsonl(path)
