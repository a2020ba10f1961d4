"""Read uploaded files into raw documents, one file at a time.

Every file yields a `FileReport`: the documents it held and the errors met on the way, each error
with a reason code (`ErrorReason`) a page can show and a sentence a person can act on. A bad file,
or a bad line in a good file, never stops the other files.

Supported: .txt / .md (one document per file), .jsonl (one document per line), .parquet (one
document per row, DocMath-style `paragraphs` lists), .pdf (text layer via pypdf) and .zip holding
any of these. Zip members are never written to disk under their own names, and every size the
archive declares is checked before reading and again while reading (headers can lie).

Memory: a file is streamed once to hash it (duplicate files are refused by content hash) and once
to parse it; a zip member is copied once into a spooled temporary file (memory up to 8 MiB, then
disk) because the parsers for parquet and pdf need a seekable stream.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable, Iterator, Union

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | {".jsonl", ".parquet", ".pdf", ".zip"}

_CHUNK = 1 << 20
_SPOOL_IN_MEMORY = 8 << 20
_SNIFF_BYTES = 8192
# A jsonl file with thousands of bad lines should not produce thousands of error rows.
_MAX_LINE_ERRORS_PER_FILE = 20
# Files a zip tool adds on its own; skipped without an error.
_ZIP_NOISE = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)")


class ErrorReason(StrEnum):
    UNSUPPORTED_TYPE = "unsupported_type"
    NOT_TEXT = "not_text"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    CORRUPT = "corrupt"
    INVALID_RECORD = "invalid_record"
    OVERSIZED_ZIP = "oversized_zip"
    NESTED_ZIP = "nested_zip"
    UNSAFE_PATH = "unsafe_path"
    DUPLICATE_FILE = "duplicate_file"


@dataclass(frozen=True)
class ReaderLimits:
    """Caps that keep one upload from exhausting the ingest worker."""

    max_file_bytes: int = 100 << 20  # any single file or zip member, uncompressed
    max_zip_members: int = 10_000
    max_zip_total_bytes: int = 1 << 30  # sum of uncompressed member sizes in one archive
    # Deflate reaches ~1000x only on degenerate input; real text compresses 3-10x.
    max_zip_compression_ratio: float = 200.0
    # Depth of archives: the uploaded zip is depth 1; a zip inside it would be depth 2.
    max_zip_depth: int = 1
    # What one file may expand to, whatever its compressed size (parquet and PDF compress well):
    # the whole file is refused past either budget.
    max_documents_per_file: int = 200_000
    max_chars_per_file: int = 300_000_000
    max_pdf_pages: int = 5_000


@dataclass
class RawDocument:
    """A document as read, before normalisation. Optional fields come from the file itself."""

    text: str
    source: str  # file name; "archive.zip/member.txt" for zip members
    title: str | None = None
    doc_id: str | None = None
    cluster: str | None = None
    numeric: bool | None = None


@dataclass(frozen=True)
class FileError:
    source: str
    reason: ErrorReason
    message: str
    line: int | None = None  # for errors about one line / row of a multi-document file

    def to_dict(self) -> dict:
        return {"source": self.source, "reason": str(self.reason), "message": self.message,
                "line": self.line}


@dataclass
class FileReport:
    """What one uploaded file gave: documents, errors, or both (a jsonl with some bad lines)."""

    source: str
    documents: list[RawDocument] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


class _Rejected(Exception):
    """The whole file (or zip member) is refused."""

    def __init__(self, reason: ErrorReason, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


# A source is a path, an open binary file with a `.name` (Django's UploadedFile is one), or a
# (name, binary file) pair.
Source = Union[str, os.PathLike, BinaryIO, tuple[str, BinaryIO]]


def expand_sources(sources: Iterable[Source]) -> list[Source]:
    """Directories become the files under them (sorted, hidden files skipped)."""
    expanded: list[Source] = []
    for source in sources:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            for path in sorted(Path(source).rglob("*")):
                if path.is_file() and not any(p.startswith(".") for p in path.parts[-1:]):
                    expanded.append(path)
        else:
            expanded.append(source)
    return expanded


def read_sources(sources: Iterable[Source], limits: ReaderLimits = ReaderLimits()) -> Iterator[FileReport]:
    """Yield one `FileReport` per source, in order. Files repeated by content are refused."""
    seen_hashes: dict[str, str] = {}
    for source in sources:
        name = _source_name(source)
        report = FileReport(source=name)
        try:
            with _open_source(source) as stream:
                _read_stream(name, stream, depth=0, limits=limits, seen=seen_hashes, report=report)
        except OSError as exc:
            report.errors.append(FileError(name, ErrorReason.CORRUPT, f"could not read the file: {exc}"))
        yield report


# -- opening ---------------------------------------------------------------------------------


def _source_name(source: Source) -> str:
    if isinstance(source, tuple):
        return str(source[0])
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return Path(str(getattr(source, "name", "upload"))).name


class _Borrowed:
    """Context manager for a caller's stream: rewinds it, and leaves it open afterwards."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        if self.stream.seekable():
            self.stream.seek(0)
            return self.stream
        # A non-seekable stream (a socket, a pipe) is spooled once so it can be hashed and parsed.
        spooled = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
        while chunk := self.stream.read(_CHUNK):
            spooled.write(chunk)
        spooled.seek(0)
        self.stream = spooled  # type: ignore[assignment]
        return spooled  # type: ignore[return-value]

    def __exit__(self, *exc) -> None:
        return None


def _open_source(source: Source):
    if isinstance(source, tuple):
        return _Borrowed(source[1])
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb")
    return _Borrowed(source)


def _stream_size(stream: BinaryIO) -> int:
    position = stream.tell()
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(position)
    return size


def _content_hash(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


# -- dispatch --------------------------------------------------------------------------------


def _read_stream(name: str, stream: BinaryIO, *, depth: int, limits: ReaderLimits,
                 seen: dict[str, str], report: FileReport) -> None:
    """Check type, size and duplication, then hand the stream to the parser for its type."""
    kept = len(report.documents)  # a refused file contributes no document at all
    try:
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise _Rejected(ErrorReason.UNSUPPORTED_TYPE,
                            f"'{suffix or name}' files are not supported; use "
                            f"{', '.join(sorted(SUPPORTED_SUFFIXES))}")
        size = _stream_size(stream)
        cap = limits.max_zip_total_bytes if suffix == ".zip" else limits.max_file_bytes
        if size > cap:
            raise _Rejected(ErrorReason.TOO_LARGE, f"{_mib(size)} is over the {_mib(cap)} limit")
        if size == 0:
            raise _Rejected(ErrorReason.EMPTY, "the file is empty")
        digest = _content_hash(stream)
        if digest in seen:
            raise _Rejected(ErrorReason.DUPLICATE_FILE, f"same content as {seen[digest]}")
        seen[digest] = name
        if suffix == ".zip":
            _read_zip(name, stream, depth=depth + 1, limits=limits, seen=seen, report=report)
            return
        before = len(report.documents)
        if suffix in TEXT_SUFFIXES:
            report.documents.append(_read_plain_text(name, stream))
        elif suffix in MARKDOWN_SUFFIXES:
            report.documents.append(_read_markdown(name, stream))
        elif suffix == ".jsonl":
            _read_jsonl(name, stream, report)
        elif suffix == ".parquet":
            _read_parquet(name, stream, report, limits)
        elif suffix == ".pdf":
            report.documents.append(_read_pdf(name, stream, limits))
        if len(report.documents) == before and not any(e.source == name for e in report.errors):
            raise _Rejected(ErrorReason.EMPTY, "no documents found in the file")
    except _Rejected as rejected:
        del report.documents[kept:]
        report.errors.append(FileError(name, rejected.reason, rejected.message))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


# -- text and markdown -----------------------------------------------------------------------


def _decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252; binary is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _refuse_if_binary(data.decode("utf-16"))
        except UnicodeDecodeError as exc:
            raise _Rejected(ErrorReason.NOT_TEXT, f"not valid UTF-16 text: {exc.reason}") from None
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise _Rejected(ErrorReason.NOT_TEXT, "the file looks binary (it contains NUL bytes)")
    try:
        return _refuse_if_binary(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        pass
    try:
        return _refuse_if_binary(data.decode("cp1252"))
    except UnicodeDecodeError:
        raise _Rejected(ErrorReason.NOT_TEXT, "not UTF-8 text and not Windows-1252 either") from None


def _refuse_if_binary(text: str) -> str:
    # Binary data can decode as cp1252 (or even UTF-8); real text is letters, digits, spaces.
    head = text[:_SNIFF_BYTES]
    controls = sum(1 for ch in head if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.01 * len(head):
        raise _Rejected(ErrorReason.NOT_TEXT, "the file looks binary (many control bytes)")
    return text


def _read_whole_text(stream: BinaryIO) -> str:
    text = _decode_text(stream.read())
    if not text.strip():
        raise _Rejected(ErrorReason.EMPTY, "the file holds only whitespace")
    return text


def _title_from_name(name: str) -> str:
    stem = PurePosixPath(name).stem
    return re.sub(r"[_\-]+", " ", stem).strip() or stem


def _read_plain_text(name: str, stream: BinaryIO) -> RawDocument:
    return RawDocument(text=_read_whole_text(stream), source=name, title=_title_from_name(name))


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_ATX_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _read_markdown(name: str, stream: BinaryIO) -> RawDocument:
    """Markdown: optional `key: value` front matter (title, cluster, id, numeric), title from it
    or from the first heading, else from the file name."""
    text = _read_whole_text(stream)
    meta: dict[str, str] = {}
    if match := _FRONT_MATTER.match(text):
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("'\"")
        text = text[match.end():]
        if not text.strip():
            raise _Rejected(ErrorReason.EMPTY, "the file holds only front matter")
    heading = _ATX_HEADING.search(text)
    title = meta.get("title") or (heading.group(1).strip() if heading else _title_from_name(name))
    numeric = {"true": True, "yes": True, "false": False, "no": False}.get(meta.get("numeric", "").lower())
    return RawDocument(text=text, source=name, title=title, doc_id=meta.get("id") or None,
                       cluster=meta.get("cluster") or None, numeric=numeric)


# -- jsonl -----------------------------------------------------------------------------------


def _optional_str(record: dict, key: str) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"'{key}' must be a string")
    return str(value)


def _optional_bool(record: dict, key: str) -> bool | None:
    value = record.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"'{key}' must be true or false")


def parse_document_record(record: object, source: str) -> RawDocument:
    """One jsonl object -> RawDocument. Raises ValueError with a readable reason."""
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' is missing or not a string")
    if not text.strip():
        raise ValueError("'text' is empty")
    return RawDocument(text=text, source=source, title=_optional_str(record, "title"),
                       doc_id=_optional_str(record, "id"), cluster=_optional_str(record, "cluster"),
                       numeric=_optional_bool(record, "numeric"))


def _read_jsonl(name: str, stream: BinaryIO, report: FileReport) -> None:
    if b"\x00" in stream.read(_SNIFF_BYTES):
        raise _Rejected(ErrorReason.NOT_TEXT, "the file looks binary (it contains NUL bytes)")
    stream.seek(0)
    line_errors = 0
    for number, raw_line in enumerate(stream, start=1):
        if not raw_line.strip():
            continue
        try:
            record = json.loads(raw_line.decode("utf-8-sig" if number == 1 else "utf-8"))
            report.documents.append(parse_document_record(record, name))
        except (ValueError, UnicodeDecodeError) as exc:
            line_errors += 1
            if line_errors <= _MAX_LINE_ERRORS_PER_FILE:
                why = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else (
                    "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc))
                report.errors.append(FileError(name, ErrorReason.INVALID_RECORD,
                                               f"line {number}: {why}", line=number))
    if line_errors > _MAX_LINE_ERRORS_PER_FILE:
        report.errors.append(FileError(
            name, ErrorReason.INVALID_RECORD,
            f"{line_errors - _MAX_LINE_ERRORS_PER_FILE} more bad lines not listed"))


# -- parquet ---------------------------------------------------------------------------------


def _over_budget(documents: int, chars: int, limits: ReaderLimits) -> str | None:
    if documents > limits.max_documents_per_file:
        return f"it holds over {limits.max_documents_per_file:,} documents, the limit per file: split it"
    if chars > limits.max_chars_per_file:
        return f"its text is over {limits.max_chars_per_file:,} characters, the limit per file: split it"
    return None


def _read_parquet(name: str, stream: BinaryIO, report: FileReport, limits: ReaderLimits = ReaderLimits()) -> None:
    """One document per row: `paragraphs` (list of strings, joined by blank lines, as in
    DocMath-Eval) or `text`; optional `title`, `cluster`, `id`, `numeric` columns. Refused whole
    past the documents / characters budget of ReaderLimits."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
        columns = set(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _Rejected(ErrorReason.CORRUPT, f"not a readable parquet file: {exc}") from None
    body = "paragraphs" if "paragraphs" in columns else "text" if "text" in columns else None
    if body is None:
        raise _Rejected(ErrorReason.INVALID_RECORD,
                        f"needs a 'paragraphs' (list of strings) or 'text' column; found "
                        f"{', '.join(sorted(columns)) or 'none'}")
    wanted = [body] + [c for c in ("title", "cluster", "id", "numeric") if c in columns]
    row_number = 0
    bad_rows = 0
    chars = 0
    try:
        for batch in parquet.iter_batches(batch_size=512, columns=wanted):
            for row in batch.to_pylist():
                row_number += 1
                try:
                    record = dict(row)
                    if body == "paragraphs":
                        record["text"] = _join_paragraphs(row["paragraphs"])
                    document = parse_document_record(record, name)
                    chars += len(document.text)
                    over = _over_budget(row_number, chars, limits)
                    if over:
                        raise _Rejected(ErrorReason.TOO_LARGE, over)
                    report.documents.append(document)
                except ValueError as exc:
                    bad_rows += 1
                    if bad_rows <= _MAX_LINE_ERRORS_PER_FILE:
                        report.errors.append(FileError(name, ErrorReason.INVALID_RECORD,
                                                       f"row {row_number}: {exc}", line=row_number))
    except (pa.ArrowException, OSError) as exc:
        raise _Rejected(ErrorReason.CORRUPT, f"parquet file damaged at row {row_number + 1}: {exc}") from None


def _join_paragraphs(paragraphs: object) -> str:
    if not isinstance(paragraphs, list):
        raise ValueError("'paragraphs' must be a list of strings")
    return "\n\n".join(p.strip() for p in paragraphs if isinstance(p, str) and p.strip())


# -- pdf -------------------------------------------------------------------------------------


def _read_pdf(name: str, stream: BinaryIO, limits: ReaderLimits = ReaderLimits()) -> RawDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(stream)
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Rejected(ErrorReason.CORRUPT, "the PDF is password-protected")
        if len(reader.pages) > limits.max_pdf_pages:
            raise _Rejected(ErrorReason.TOO_LARGE, f"it has {len(reader.pages):,} pages; the limit is "
                                                   f"{limits.max_pdf_pages:,} per file: split it")
        pages, chars = [], 0
        for page in reader.pages:  # the text a few compressed bytes can expand to is bounded too
            pages.append(page.extract_text() or "")
            chars += len(pages[-1])
            over = _over_budget(1, chars, limits)
            if over:
                raise _Rejected(ErrorReason.TOO_LARGE, over)
        title = reader.metadata.title if reader.metadata else None
    except _Rejected:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, zlib.error) as exc:
        raise _Rejected(ErrorReason.CORRUPT, f"not a readable PDF: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise _Rejected(ErrorReason.EMPTY, "the PDF has no text layer (a scan? run OCR first)")
    return RawDocument(text=text, source=name, title=(title or "").strip() or _title_from_name(name))


# -- zip -------------------------------------------------------------------------------------


def _is_unsafe_member_name(member: str) -> bool:
    """Absolute paths, drive letters and `..` components could escape an extraction folder;
    we never extract, but such a name marks a hostile or broken archive."""
    normalized = member.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        return True
    return ".." in normalized.split("/") or posixpath.normpath(normalized).startswith("..")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _read_zip(name: str, stream: BinaryIO, *, depth: int, limits: ReaderLimits,
              seen: dict[str, str], report: FileReport) -> None:
    try:
        archive = zipfile.ZipFile(stream)
        members = [i for i in archive.infolist() if not i.is_dir() and not _ZIP_NOISE.search(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise _Rejected(ErrorReason.CORRUPT, f"not a readable zip archive: {exc}") from None
    if len(members) > limits.max_zip_members:
        raise _Rejected(ErrorReason.OVERSIZED_ZIP,
                        f"{len(members)} files in the archive; the limit is {limits.max_zip_members}")
    declared_total = sum(i.file_size for i in members)
    if declared_total > limits.max_zip_total_bytes:
        raise _Rejected(ErrorReason.OVERSIZED_ZIP,
                        f"unpacks to {_mib(declared_total)}; the limit is {_mib(limits.max_zip_total_bytes)}")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _CHUNK and ratio > limits.max_zip_compression_ratio:
            raise _Rejected(ErrorReason.OVERSIZED_ZIP,
                            f"'{info.filename}' expands {ratio:.0f}x (a zip bomb?); the limit is "
                            f"{limits.max_zip_compression_ratio:.0f}x")
    if not members:
        raise _Rejected(ErrorReason.EMPTY, "the archive holds no files")
    budget = limits.max_zip_total_bytes
    for info in members:
        member_name = f"{name}/{info.filename}"
        try:
            budget -= _read_zip_member(archive, info, member_name, depth=depth, budget=budget,
                                       limits=limits, seen=seen, report=report)
        except _Rejected as rejected:
            report.errors.append(FileError(member_name, rejected.reason, rejected.message))
        if budget <= 0:
            report.errors.append(FileError(name, ErrorReason.OVERSIZED_ZIP,
                                           "the archive unpacked past its size limit; rest skipped"))
            return


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member_name: str, *,
                     depth: int, budget: int, limits: ReaderLimits, seen: dict[str, str],
                     report: FileReport) -> int:
    """Copy one member out (capped), then read it like an uploaded file. Returns bytes used."""
    if _is_unsafe_member_name(info.filename) or _is_symlink(info):
        raise _Rejected(ErrorReason.UNSAFE_PATH,
                        f"refused member '{info.filename}': absolute path, '..' or symlink")
    suffix = PurePosixPath(info.filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _Rejected(ErrorReason.UNSUPPORTED_TYPE, f"'{suffix or info.filename}' files are not supported")
    if suffix == ".zip" and depth + 1 > limits.max_zip_depth:
        raise _Rejected(ErrorReason.NESTED_ZIP,
                        f"zip archives nested more than {limits.max_zip_depth} deep are not read")
    if info.flag_bits & 0x1:
        raise _Rejected(ErrorReason.CORRUPT, "the member is encrypted")
    member_cap = limits.max_zip_total_bytes if suffix == ".zip" else limits.max_file_bytes
    if info.file_size > member_cap:
        raise _Rejected(ErrorReason.TOO_LARGE, f"{_mib(info.file_size)} is over the {_mib(member_cap)} limit")
    cap = min(member_cap, budget)
    spooled = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    with spooled:
        copied = 0
        try:
            with archive.open(info) as member:
                while chunk := member.read(_CHUNK):
                    copied += len(chunk)
                    if copied > cap:  # the header understated the size
                        raise _Rejected(ErrorReason.TOO_LARGE if cap == member_cap else ErrorReason.OVERSIZED_ZIP,
                                        "the member unpacks past its size limit")
                    spooled.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise _Rejected(ErrorReason.CORRUPT, f"the member is damaged: {exc}") from None
        spooled.seek(0)
        _read_stream(member_name, spooled, depth=depth, limits=limits, seen=seen, report=report)  # type: ignore[arg-type]
    return copied
