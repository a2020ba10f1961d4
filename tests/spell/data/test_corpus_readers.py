"""Readers: every supported format, every refusal reason, and the zip safety caps."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spell.data.readers import ErrorReason, ReaderLimits, read_sources

LONG_TEXT = "The river rose in the night and the old bridge was carried away. " * 5


def read_all(sources, limits: ReaderLimits = ReaderLimits()):
    reports = list(read_sources(sources, limits))
    documents = [d for r in reports for d in r.documents]
    errors = [e for r in reports for e in r.errors]
    return reports, documents, errors


def reasons(errors) -> list[ErrorReason]:
    return [e.reason for e in errors]


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF with a text layer (Helvetica), with a correct xref table."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# -- formats ---------------------------------------------------------------------------------


def test_it_reads_a_text_file_as_one_document_titled_by_its_name(tmp_path: Path):
    path = tmp_path / "flood_of-1887.txt"
    path.write_text(LONG_TEXT, encoding="utf-8")
    _, documents, errors = read_all([path])
    assert errors == []
    assert len(documents) == 1
    assert documents[0].title == "flood of 1887"
    assert documents[0].text == LONG_TEXT
    assert documents[0].source == "flood_of-1887.txt"


def test_it_takes_a_markdown_title_from_the_first_heading(tmp_path: Path):
    path = tmp_path / "notes.md"
    path.write_text("Intro line\n\n## The Great Flood\n\n" + LONG_TEXT, encoding="utf-8")
    _, documents, _ = read_all([path])
    assert documents[0].title == "The Great Flood"


def test_it_reads_markdown_front_matter(tmp_path: Path):
    path = tmp_path / "ferry.md"
    path.write_text("---\ntitle: The ferry\ncluster: town\nid: t7\nnumeric: yes\n---\n" + LONG_TEXT)
    _, documents, _ = read_all([path])
    doc = documents[0]
    assert (doc.title, doc.cluster, doc.doc_id, doc.numeric) == ("The ferry", "town", "t7", True)
    assert not doc.text.startswith("---")


def test_it_decodes_windows_1252_text(tmp_path: Path):
    path = tmp_path / "legacy.txt"
    path.write_bytes("Caf\u00e9 prices rose \u2013 again. ".encode("cp1252") * 10)
    _, documents, errors = read_all([path])
    assert errors == []
    assert "Caf\u00e9" in documents[0].text and "\u2013" in documents[0].text


def test_it_reads_jsonl_lines_with_optional_fields(tmp_path: Path):
    path = tmp_path / "docs.jsonl"
    lines = [
        {"text": "first document text", "title": "One", "cluster": "c1", "id": "a", "numeric": True},
        {"text": "second document text", "cluster": 7},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    _, documents, errors = read_all([path])
    assert errors == []
    assert [(d.doc_id, d.title, d.cluster, d.numeric) for d in documents] == [
        ("a", "One", "c1", True), (None, None, "7", None)]


def test_it_reports_bad_jsonl_lines_and_keeps_the_good_ones(tmp_path: Path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "good one"}\nnot json\n{"title": "no text"}\n[1, 2]\n{"text": "x", "numeric": "maybe"}\n{"text": "good two"}\n')
    _, documents, errors = read_all([path])
    assert [d.text for d in documents] == ["good one", "good two"]
    assert reasons(errors) == [ErrorReason.INVALID_RECORD] * 4
    assert [e.line for e in errors] == [2, 3, 4, 5]
    assert "not valid JSON" in errors[0].message and "'text'" in errors[1].message


def test_it_caps_the_number_of_line_errors_listed(tmp_path: Path):
    path = tmp_path / "junk.jsonl"
    path.write_text("junk\n" * 50)
    _, _, errors = read_all([path])
    assert len(errors) == 21
    assert "30 more bad lines" in errors[-1].message


def test_it_reads_parquet_paragraphs_as_one_document_per_row(tmp_path: Path):
    path = tmp_path / "docmath.parquet"
    table = pa.table({
        "paragraphs": [["Revenue rose.", "| Q1 | 70.0 |"], ["Costs fell.", "", "Margins grew."]],
        "title": ["Report A", None],
        "cluster": ["fin", "fin"],
    })
    pq.write_table(table, path)
    _, documents, errors = read_all([path])
    assert errors == []
    assert [d.text for d in documents] == ["Revenue rose.\n\n| Q1 | 70.0 |", "Costs fell.\n\nMargins grew."]
    assert [d.title for d in documents] == ["Report A", None]
    assert {d.cluster for d in documents} == {"fin"}


def test_it_refuses_parquet_without_a_text_column(tmp_path: Path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"numbers": [1, 2]}), path)
    _, documents, errors = read_all([path])
    assert documents == []
    assert reasons(errors) == [ErrorReason.INVALID_RECORD]
    assert "'paragraphs'" in errors[0].message


def test_it_reads_the_text_layer_of_a_pdf(tmp_path: Path):
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf("Quarterly revenue was 70 million"))
    _, documents, errors = read_all([path])
    assert errors == []
    assert "Quarterly revenue was 70 million" in documents[0].text
    assert documents[0].title == "report"


def test_it_reads_uploaded_file_objects_and_name_stream_pairs():
    upload = io.BytesIO(LONG_TEXT.encode())
    upload.name = "upload.txt"
    _, documents, errors = read_all([upload, ("pair.md", io.BytesIO(b"# Pair\n\nbody text"))])
    assert errors == []
    assert [d.source for d in documents] == ["upload.txt", "pair.md"]
    assert documents[1].title == "Pair"


def test_it_reads_supported_members_of_a_zip(tmp_path: Path):
    path = tmp_path / "bundle.zip"
    path.write_bytes(make_zip({
        "docs/a.txt": b"alpha text",
        "docs/b.jsonl": b'{"text": "beta"}\n{"text": "gamma"}\n',
        "docs/": b"",
        "__MACOSX/docs/._a.txt": b"\x00\x01",
    }))
    reports, documents, errors = read_all([path])
    assert errors == []
    assert len(reports) == 1
    assert [d.text for d in documents] == ["alpha text", "beta", "gamma"]
    assert documents[0].source == "bundle.zip/docs/a.txt"


# -- refusals: one reason each, and the good files still come through -----------------------


def test_one_bad_file_never_stops_the_good_ones(tmp_path: Path):
    good = tmp_path / "good.txt"
    good.write_text(LONG_TEXT)
    bad = tmp_path / "bad.docx"
    bad.write_bytes(b"PK\x03\x04 whatever")
    missing = tmp_path / "missing.txt"
    _, documents, errors = read_all([bad, missing, good])
    assert [d.source for d in documents] == ["good.txt"]
    assert reasons(errors) == [ErrorReason.UNSUPPORTED_TYPE, ErrorReason.CORRUPT]


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("slides.pptx", b"anything", ErrorReason.UNSUPPORTED_TYPE),
        ("noext", b"anything", ErrorReason.UNSUPPORTED_TYPE),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ErrorReason.NOT_TEXT),
        ("binary.jsonl", b"\x00\x01\x02\x03" * 10, ErrorReason.NOT_TEXT),
        ("controls.txt", bytes(range(1, 9)) * 50, ErrorReason.NOT_TEXT),
        ("empty.txt", b"", ErrorReason.EMPTY),
        ("blank.md", b"  \n\n\t  \n", ErrorReason.EMPTY),
        ("blank.jsonl", b"\n\n", ErrorReason.EMPTY),
        ("broken.zip", b"PK\x03\x04 not really a zip", ErrorReason.CORRUPT),
        ("broken.parquet", b"PAR1 not really parquet PAR1", ErrorReason.CORRUPT),
        ("broken.pdf", b"%PDF-1.4 garbage without objects", ErrorReason.CORRUPT),
    ],
)
def test_it_refuses_bad_files_with_a_reason(tmp_path: Path, name: str, data: bytes, reason: ErrorReason):
    path = tmp_path / name
    path.write_bytes(data)
    _, documents, errors = read_all([path])
    assert documents == []
    assert reasons(errors) == [reason]
    assert errors[0].source == name
    assert errors[0].message


def test_it_refuses_a_pdf_without_text_as_empty(tmp_path: Path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "scan.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    _, _, errors = read_all([path])
    assert reasons(errors) == [ErrorReason.EMPTY]
    assert "OCR" in errors[0].message


def test_it_refuses_files_over_the_size_limit(tmp_path: Path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 2000)
    _, documents, errors = read_all([path], ReaderLimits(max_file_bytes=1000))
    assert documents == []
    assert reasons(errors) == [ErrorReason.TOO_LARGE]


def test_a_parquet_that_expands_past_the_text_budget_is_refused_whole(tmp_path: Path):
    path = tmp_path / "bomb.parquet"  # 2,000 rows of one repeated sentence: a few KiB compressed
    pq.write_table(pa.table({"text": ["The same long sentence again and again. " * 25] * 2000}), path)
    assert path.stat().st_size < 20_000

    _, documents, errors = read_all([path], ReaderLimits(max_chars_per_file=1_000_000))

    assert documents == [] and reasons(errors) == [ErrorReason.TOO_LARGE]
    assert "over 1,000,000 characters" in errors[0].message
    _, documents, errors = read_all([path], ReaderLimits(max_documents_per_file=500))
    assert documents == [] and "over 500 documents" in errors[0].message
    assert len(read_all([path])[1]) == 2000  # the defaults take it


def test_a_pdf_past_the_text_or_page_budget_is_refused(tmp_path: Path):
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf("Quarterly revenue was 70 million " * 20))

    _, documents, errors = read_all([path], ReaderLimits(max_chars_per_file=100))
    assert documents == [] and reasons(errors) == [ErrorReason.TOO_LARGE] and "characters" in errors[0].message
    _, documents, errors = read_all([path], ReaderLimits(max_pdf_pages=0))
    assert documents == [] and "1 pages; the limit is 0" in errors[0].message


def test_it_refuses_a_file_repeated_by_content(tmp_path: Path):
    (tmp_path / "a.txt").write_text(LONG_TEXT)
    (tmp_path / "b.txt").write_text(LONG_TEXT)
    (tmp_path / "c.zip").write_bytes(make_zip({"inner.txt": LONG_TEXT.encode()}))
    _, documents, errors = read_all([tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.zip"])
    assert [d.source for d in documents] == ["a.txt"]
    assert reasons(errors) == [ErrorReason.DUPLICATE_FILE, ErrorReason.DUPLICATE_FILE]
    assert [e.source for e in errors] == ["b.txt", "c.zip/inner.txt"]
    assert "a.txt" in errors[0].message


# -- zip safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["../escape.txt", "docs/../../escape.txt", "/etc/escape.txt",
                                    "C:/windows/escape.txt", "..\\escape.txt"])
def test_it_refuses_zip_members_that_traverse_paths(tmp_path: Path, member: str):
    path = tmp_path / "evil.zip"
    path.write_bytes(make_zip({member: b"payload one", "fine.txt": b"payload two"}))
    _, documents, errors = read_all([path])
    assert [d.text for d in documents] == ["payload two"]
    assert reasons(errors) == [ErrorReason.UNSAFE_PATH]


def test_it_refuses_symlink_members(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("link.txt")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
        archive.writestr("fine.txt", "fine content")
    path = tmp_path / "links.zip"
    path.write_bytes(buffer.getvalue())
    _, documents, errors = read_all([path])
    assert [d.text for d in documents] == ["fine content"]
    assert reasons(errors) == [ErrorReason.UNSAFE_PATH]


def test_it_refuses_zips_nested_deeper_than_the_limit(tmp_path: Path):
    inner = make_zip({"deep.txt": b"deep text"})
    path = tmp_path / "outer.zip"
    path.write_bytes(make_zip({"inner.zip": inner, "top.txt": b"top text"}))
    _, documents, errors = read_all([path])
    assert [d.text for d in documents] == ["top text"]
    assert reasons(errors) == [ErrorReason.NESTED_ZIP]
    _, documents, errors = read_all([path], ReaderLimits(max_zip_depth=2))
    assert sorted(d.text for d in documents) == ["deep text", "top text"]
    assert documents[0].source == "outer.zip/inner.zip/deep.txt"


def test_it_caps_the_number_of_zip_members(tmp_path: Path):
    path = tmp_path / "many.zip"
    path.write_bytes(make_zip({f"f{i}.txt": f"text {i}".encode() for i in range(5)}))
    _, documents, errors = read_all([path], ReaderLimits(max_zip_members=4))
    assert documents == []
    assert reasons(errors) == [ErrorReason.OVERSIZED_ZIP]
    assert "5 files" in errors[0].message


def test_it_caps_the_total_unpacked_size_of_a_zip(tmp_path: Path):
    path = tmp_path / "large.zip"
    path.write_bytes(make_zip({"a.txt": b"a" * 600, "b.txt": b"b" * 600}))
    _, documents, errors = read_all([path], ReaderLimits(max_zip_total_bytes=1000))
    assert documents == []
    assert reasons(errors) == [ErrorReason.OVERSIZED_ZIP]


def test_it_refuses_a_zip_bomb_by_compression_ratio(tmp_path: Path):
    path = tmp_path / "bomb.zip"
    path.write_bytes(make_zip({"zeros.txt": b"0" * (3 << 20)}))  # ~3 MiB packed into ~3 KiB
    _, documents, errors = read_all([path])
    assert documents == []
    assert reasons(errors) == [ErrorReason.OVERSIZED_ZIP]
    assert "zip bomb" in errors[0].message


def test_it_applies_the_per_file_cap_to_zip_members(tmp_path: Path):
    path = tmp_path / "mixed.zip"
    path.write_bytes(make_zip({"big.txt": b"x" * 3000, "small.txt": b"small text"}))
    _, documents, errors = read_all([path], ReaderLimits(max_file_bytes=1000))
    assert [d.text for d in documents] == ["small text"]
    assert reasons(errors) == [ErrorReason.TOO_LARGE]
    assert errors[0].source == "mixed.zip/big.txt"


def test_it_reports_unsupported_zip_members_and_reads_the_rest(tmp_path: Path):
    path = tmp_path / "bundle.zip"
    path.write_bytes(make_zip({"photo.jpg": b"\xff\xd8\xff", "ok.txt": b"readable"}))
    _, documents, errors = read_all([path])
    assert [d.text for d in documents] == ["readable"]
    assert reasons(errors) == [ErrorReason.UNSUPPORTED_TYPE]
