"""The corpus pipeline: uploaded files -> document sets ready for self-play.

    read -> normalise -> dedup -> token counts -> numeric marking -> clustering

`ingest()` is a pure library call (no Django): the Celery ingest task and the CLI pass their own
`progress(stage, done, total)` callback. A callback that raises stops the ingest (that is how a
caller cancels). `write_corpus_jsonl` / `read_corpus_jsonl` are the training corpus file of
docs/architecture.md: `{"id", "text", "title", "cluster", "numeric"}` one per line.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from spell.data.clustering import ClusterOptions, cluster_documents
from spell.data.dedup import DedupOptions, find_duplicates
from spell.data.normalize import NormalizeOptions, length_problem, normalize_text, normalize_title
from spell.data.numeric import NumericThresholds, given_cluster_flag, is_numeric_cluster, profile_text
from spell.data.readers import FileError, RawDocument, ReaderLimits, Source, expand_sources, read_sources

ProgressCallback = Callable[[str, int, int], None]
# Every ingest's stages, in order; with an embedding model (ClusterOptions.embedder) "embed"
# (documents embedded / documents, after every batch) comes between "numeric" and "cluster".
STAGES = ("read", "normalize", "dedup", "tokens", "numeric", "cluster")
EMBED_STAGE = "embed"
# Token length histogram edges; the last bin is open-ended.
HISTOGRAM_EDGES = (0, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


@dataclass(frozen=True)
class IngestOptions:
    limits: ReaderLimits = ReaderLimits()
    normalize: NormalizeOptions = NormalizeOptions()
    dedup: DedupOptions = DedupOptions()
    numeric: NumericThresholds = NumericThresholds()
    clustering: ClusterOptions = ClusterOptions()
    # Without a tokenizer, tokens ~= words x this factor (English text under BPE tokenizers).
    tokens_per_word: float = 1.3
    id_prefix: str = "d"
    # Evaluation text to keep out of the corpus (spell.data.decontam.EvalIndex), or None.
    decontaminate: Any = None


@dataclass
class Document:
    id: str
    title: str | None
    text: str
    cluster: str
    numeric: bool  # the cluster's flag: whether this document's set feeds docmath_qa
    tokens: int
    source: str
    numeric_document: bool = False  # this document alone passed the numeric heuristic


@dataclass
class DroppedDocument:
    id: str
    title: str | None
    source: str
    reason: str  # "exact_duplicate", "near_duplicate", "too_short", "too_long", "contaminated"
    duplicate_of: str | None = None
    similarity: float | None = None
    detail: str = ""


@dataclass
class Cluster:
    id: str
    label: str
    size: int
    tokens: int
    numeric: bool
    given: bool  # named in the uploaded file (else made by k-means)


@dataclass
class HistogramBin:
    low: int
    high: int | None  # None: open-ended
    count: int


@dataclass
class IngestStats:
    files: int
    files_with_errors: int
    documents: int
    tokens: int
    token_counter: str  # the tokenizer's name, or "whitespace estimate (...)"
    clusters: int
    numeric_clusters: int
    dropped_duplicates: int
    dropped_length: int
    length_histogram: list[HistogramBin]
    dropped_contaminated: int = 0


@dataclass
class IngestResult:
    documents: list[Document]
    errors: list[FileError]
    dropped: list[DroppedDocument]
    clusters: list[Cluster]
    stats: IngestStats
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (documents without their text) for a database row or a page."""
        return {
            "documents": [{k: v for k, v in asdict(d).items() if k != "text"} for d in self.documents],
            "errors": [e.to_dict() for e in self.errors],
            "dropped": [asdict(d) for d in self.dropped],
            "clusters": [asdict(c) for c in self.clusters],
            "stats": asdict(self.stats),
            "notes": list(self.notes),
        }


class _Progress:
    """Reports at most ~100 times per stage (each time 1% more is done), plus the first and last
    item."""

    def __init__(self, callback: ProgressCallback | None):
        self._callback = callback

    def stage(self, name: str, total: int) -> Callable[[int], None]:
        step = max(1, total // 100)
        last = 0

        def report(done: int) -> None:
            nonlocal last
            if self._callback is not None and (done == total or done - last >= step):
                last = done
                self._callback(name, done, total)

        if self._callback is not None:
            self._callback(name, 0, total)
        return report


# -- token counting --------------------------------------------------------------------------


def _token_counter(tokenizer: Any, tokens_per_word: float) -> tuple[str, Callable[[list[str]], list[int]]]:
    if tokenizer is None:
        def estimate(texts: list[str]) -> list[int]:
            return [math.ceil(len(text.split()) * tokens_per_word) for text in texts]
        return f"whitespace estimate (words x {tokens_per_word})", estimate

    def count(texts: list[str]) -> list[int]:
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return f"tokenizer {name}", count


def _histogram(token_counts: Iterable[int]) -> list[HistogramBin]:
    bins = [HistogramBin(low, high, 0) for low, high in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:])]
    bins.append(HistogramBin(HISTOGRAM_EDGES[-1], None, 0))
    for count in token_counts:
        for bin_ in bins:
            if bin_.high is None or count < bin_.high:
                bin_.count += 1
                break
    return bins


# -- the pipeline ----------------------------------------------------------------------------


@dataclass
class _Candidate:
    raw: RawDocument
    id: str
    text: str
    title: str | None


def _assign_ids(raws: list[RawDocument], prefix: str, notes: list[str]) -> list[str]:
    """Keep ids given in the file when unique; give the rest fresh ids `d0, d1, ...`."""
    taken: set[str] = set()
    ids: list[str | None] = []
    repeated = 0
    for raw in raws:
        if raw.doc_id is not None and raw.doc_id not in taken:
            taken.add(raw.doc_id)
            ids.append(raw.doc_id)
        else:
            repeated += raw.doc_id is not None
            ids.append(None)
    if repeated:
        notes.append(f"{repeated} document id(s) repeated in the upload; those documents got new ids")
    counter = 0
    result: list[str] = []
    for doc_id in ids:
        if doc_id is None:
            while f"{prefix}{counter}" in taken:
                counter += 1
            doc_id = f"{prefix}{counter}"
            taken.add(doc_id)
        result.append(doc_id)
    return result


def ingest(
    sources: Iterable[Source],
    *,
    tokenizer: Any = None,
    options: IngestOptions = IngestOptions(),
    progress: ProgressCallback | None = None,
) -> IngestResult:
    """Run the whole pipeline. `sources`: paths (directories are walked), binary file objects
    with a `.name`, or (name, binary file) pairs. `tokenizer`: a Hugging Face tokenizer, or None
    for a whitespace estimate (the result says which was used)."""
    tracker = _Progress(progress)
    notes: list[str] = []
    sources = expand_sources(sources)

    # read
    raws: list[RawDocument] = []
    errors: list[FileError] = []
    files_with_errors = 0
    report_read = tracker.stage("read", len(sources))
    for done, report in enumerate(read_sources(sources, options.limits), start=1):
        raws.extend(report.documents)
        errors.extend(report.errors)
        files_with_errors += bool(report.errors)
        report_read(done)

    # normalise
    ids = _assign_ids(raws, options.id_prefix, notes)
    dropped: list[DroppedDocument] = []
    candidates: list[_Candidate] = []
    report_normalize = tracker.stage("normalize", len(raws))
    for done, (raw, doc_id) in enumerate(zip(raws, ids), start=1):
        text = normalize_text(raw.text)
        title = normalize_title(raw.title)
        problem = length_problem(text, options.normalize)
        if problem is None:
            candidates.append(_Candidate(raw, doc_id, text, title))
        else:
            reason = "too_long" if problem.startswith("longer") else "too_short"
            dropped.append(DroppedDocument(doc_id, title, raw.source, reason, detail=problem))
        report_normalize(done)
    dropped_length = len(dropped)

    # dedup
    duplicates = find_duplicates([c.id for c in candidates], [c.text for c in candidates],
                                 options.dedup, on_progress=tracker.stage("dedup", len(candidates)))
    duplicate_of = {d.doc_id: d for d in duplicates}
    by_id = {c.id: c for c in candidates}
    for dup in duplicates:
        candidate = by_id[dup.doc_id]
        dropped.append(DroppedDocument(dup.doc_id, candidate.title, candidate.raw.source,
                                       f"{dup.kind}_duplicate", dup.duplicate_of, dup.similarity))
    kept = [c for c in candidates if c.id not in duplicate_of]

    # decontamination: documents that copy evaluation text (a 13-word run) never reach training
    contaminated = 0
    if options.decontaminate is not None:
        clean = []
        for c in kept:
            if options.decontaminate.contaminated(c.text):
                contaminated += 1
                dropped.append(DroppedDocument(c.id, c.title, c.raw.source, "contaminated",
                                               detail="shares a 13-word run with an evaluation set"))
            else:
                clean.append(c)
        kept = clean

    # tokens
    counter_name, count_tokens = _token_counter(tokenizer, options.tokens_per_word)
    if tokenizer is None:
        notes.append(f"token counts are a {counter_name}, not a real tokenizer's")
    token_counts: list[int] = []
    report_tokens = tracker.stage("tokens", len(kept))
    for start in range(0, len(kept), 64):
        token_counts.extend(count_tokens([c.text for c in kept[start:start + 64]]))
        report_tokens(len(token_counts))

    # numeric (per document; clusters are marked once they exist)
    report_numeric = tracker.stage("numeric", len(kept))
    numeric_document: list[bool] = []
    for done, candidate in enumerate(kept, start=1):
        numeric_document.append(profile_text(candidate.text, options.numeric).is_numeric)
        report_numeric(done)

    # embed (with an embedding model) and cluster
    reporters: dict[str, Callable[[int], None]] = {}

    def clustering_progress(stage: str, done: int, total: int) -> None:
        if stage not in reporters:
            reporters[stage] = tracker.stage(stage, total)  # reports (stage, 0, total)
        if done:
            reporters[stage](done)

    clustering = cluster_documents([c.text for c in kept], [c.raw.cluster for c in kept], options.clustering,
                                   on_progress=clustering_progress if kept else None)
    notes.extend(clustering.notes)
    clustering_progress("cluster", 1, 1)

    clusters: list[Cluster] = []
    cluster_numeric: dict[str, bool] = {}
    for group in clustering.groups:
        given_flag = given_cluster_flag([kept[i].raw.numeric for i in group.members])
        numeric = is_numeric_cluster([numeric_document[i] for i in group.members], given_flag, options.numeric)
        cluster_numeric[group.id] = numeric
        clusters.append(Cluster(group.id, group.label, len(group.members),
                                sum(token_counts[i] for i in group.members), numeric, group.given))

    documents = [
        Document(c.id, c.title, c.text, cluster_id, cluster_numeric[cluster_id], tokens, c.raw.source, own)
        for c, cluster_id, tokens, own in zip(kept, clustering.assignment, token_counts, numeric_document)
    ]
    stats = IngestStats(
        files=len(sources), files_with_errors=files_with_errors, documents=len(documents),
        tokens=sum(token_counts), token_counter=counter_name, clusters=len(clusters),
        numeric_clusters=sum(c.numeric for c in clusters), dropped_duplicates=len(duplicates),
        dropped_length=dropped_length, length_histogram=_histogram(token_counts), dropped_contaminated=contaminated,
    )
    return IngestResult(documents, errors, dropped, clusters, stats, notes)


# -- the training corpus file ----------------------------------------------------------------


@dataclass(frozen=True)
class CorpusRecord:
    id: str
    text: str
    cluster: str
    title: str | None = None
    numeric: bool = False


class CorpusFormatError(ValueError):
    def __init__(self, path: str | os.PathLike, line: int, message: str):
        super().__init__(f"{path}, line {line}: {message}")
        self.path = str(path)
        self.line = line


def write_corpus_jsonl(result: IngestResult | Sequence[Document | CorpusRecord], path: str | os.PathLike) -> int:
    """Write the corpus file the trainer reads; returns the number of documents written.
    Written to a temporary name first and renamed, so a reader never sees half a file."""
    documents = result.documents if isinstance(result, IngestResult) else result
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "w", encoding="utf-8") as out:
        for doc in documents:
            record = {"id": doc.id, "text": doc.text, "title": doc.title,
                      "cluster": doc.cluster, "numeric": bool(doc.numeric)}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, target)
    return len(documents)


def _check_record(record: object, path, line: int) -> CorpusRecord:
    if not isinstance(record, dict):
        raise CorpusFormatError(path, line, "expected a JSON object")
    for key in ("id", "text", "cluster"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise CorpusFormatError(path, line, f"'{key}' must be a non-empty string")
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise CorpusFormatError(path, line, "'title' must be a string or null")
    numeric = record.get("numeric", False)
    if not isinstance(numeric, bool):
        raise CorpusFormatError(path, line, "'numeric' must be true or false")
    return CorpusRecord(record["id"], record["text"], record["cluster"], title, numeric)


def read_corpus_jsonl(path: str | os.PathLike) -> list[CorpusRecord]:
    """Read and validate a corpus file; raises CorpusFormatError naming the line."""
    records: list[CorpusRecord] = []
    seen: dict[str, int] = {}
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise CorpusFormatError(path, line, "not UTF-8") from None
            except json.JSONDecodeError as exc:
                raise CorpusFormatError(path, line, f"not valid JSON ({exc.msg})") from None
            checked = _check_record(record, path, line)
            if checked.id in seen:
                raise CorpusFormatError(path, line, f"id '{checked.id}' already used on line {seen[checked.id]}")
            seen[checked.id] = line
            records.append(checked)
    if not records:
        raise CorpusFormatError(path, 0, "the corpus file holds no documents")
    return records


@dataclass
class DocumentSet:
    id: str
    documents: list[CorpusRecord]
    numeric: bool  # any document marked numeric marks the set (docs/architecture.md)


def document_sets(records: Sequence[CorpusRecord]) -> list[DocumentSet]:
    """Group corpus records by cluster, in order of first appearance."""
    sets: dict[str, DocumentSet] = {}
    for record in records:
        doc_set = sets.setdefault(record.cluster, DocumentSet(record.cluster, [], False))
        doc_set.documents.append(record)
        doc_set.numeric = doc_set.numeric or record.numeric
    return list(sets.values())
