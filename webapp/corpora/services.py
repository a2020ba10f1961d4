"""Corpus logic: store uploads, run the spell.data ingest pipeline, keep its result, snapshot a
corpus for a run, and the same for evaluation sets. Views and tasks call these; no HTTP here."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass, replace as dataclass_replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.corpora.models import Cluster, Corpus, Document, EvalSet, UploadIssue, folder_size
from webapp.folders import claim_new_folder

log = logging.getLogger(__name__)

# What the pipeline reads (spell.data.readers.SUPPORTED_SUFFIXES, minus aliases nobody uploads).
CORPUS_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".jsonl", ".parquet", ".pdf", ".zip")
EVAL_SUFFIXES = (".json", ".jsonl")
_CHUNK = 1 << 20
_MAX_NAME = 120
# How many dropped documents the stats keep for the page (the counts are always complete).
_DROPPED_KEPT = 200


# -- upload checks ---------------------------------------------------------------------------


def sanitize_filename(name: str) -> str:
    """A safe file name from whatever a browser sent: the last path component only (either
    slash), NFKC, letters/digits/`._-` and spaces, no leading dots, at most 120 characters with
    the suffix kept. Never empty, never `.` or `..`."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", str(name)))[-1]
    base = re.sub(r"[^\w.\- ]", "_", base, flags=re.ASCII).strip(" .")
    base = re.sub(r"_+", "_", base).lstrip(".-") or "file"
    if len(base) > _MAX_NAME:
        suffix = PurePosixPath(base).suffix[:16]
        base = base[: _MAX_NAME - len(suffix)] + suffix
    return base


def _unique_name(name: str, taken: set[str]) -> str:
    if name.lower() not in taken:
        return name
    path = PurePosixPath(name)
    n = 2
    while f"{path.stem}-{n}{path.suffix}".lower() in taken:
        n += 1
    return f"{path.stem}-{n}{path.suffix}"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


@dataclass
class FileProblem:
    filename: str
    code: str  # the pipeline's ErrorReason values, so upload and ingest issues read alike
    message: str


class UploadRejected(Exception):
    """No file of the upload could be used; nothing was stored."""

    def __init__(self, problems: list[FileProblem], message: str = "None of the files can be used."):
        super().__init__(message)
        self.message = message
        self.problems = problems


def check_upload_count(files: list) -> None:
    if len(files) > settings.UPLOAD_MAX_FILES:
        raise UploadRejected([], f"{len(files)} files in one upload; the limit is {settings.UPLOAD_MAX_FILES} "
                                 f"(put them in a .zip to send more).")


def precheck_file(upload, suffixes: Iterable[str]) -> FileProblem | None:
    """The checks that need no reading: type by suffix, empty, over the size limit."""
    name = str(getattr(upload, "name", "") or "file")
    suffix = PurePosixPath(sanitize_filename(name)).suffix.lower()
    if suffix not in suffixes:
        return FileProblem(name, "unsupported_type",
                           f"'{suffix or name}' files are not supported; use {', '.join(suffixes)}.")
    if not upload.size:
        return FileProblem(name, "empty", "the file is empty.")
    if upload.size > settings.UPLOAD_MAX_FILE_BYTES:
        return FileProblem(name, "too_large",
                           f"{_mib(upload.size)} is over the {_mib(settings.UPLOAD_MAX_FILE_BYTES)} limit per file.")
    return None


def _save_stream(upload, target: Path) -> str:
    """Stream an upload to `target` (never read whole into memory); returns its sha256."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        chunks = upload.chunks(_CHUNK) if hasattr(upload, "chunks") else iter(lambda: upload.read(_CHUNK), b"")
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def store_uploads(files: list, folder: Path, suffixes: Iterable[str]) -> tuple[list[Path], list[FileProblem]]:
    """Check and save each file under `folder` (sanitised, unique names). Duplicates by content
    are refused. Returns the saved paths and the per-file problems."""
    suffixes = tuple(suffixes)
    saved: list[Path] = []
    problems: list[FileProblem] = []
    taken: set[str] = set()
    hashes: dict[str, str] = {}
    for upload in files:
        problem = precheck_file(upload, suffixes)
        if problem:
            problems.append(problem)
            continue
        name = _unique_name(sanitize_filename(upload.name), taken)
        target = folder / name
        if target.resolve().parent != folder.resolve():  # belt and braces: sanitize_filename already refuses this
            problems.append(FileProblem(upload.name, "unsafe_path", "refused file name."))
            continue
        digest = _save_stream(upload, target)
        if digest in hashes:
            target.unlink()
            problems.append(FileProblem(upload.name, "duplicate_file", f"same content as {hashes[digest]}."))
            continue
        hashes[digest] = upload.name
        taken.add(name.lower())
        saved.append(target)
    return saved, problems


# -- corpora: create ---------------------------------------------------------------------------


DEFAULT_OPTIONS = {"cluster_size": 20, "dedup_threshold": 0.8, "min_chars": 100, "clustering": "embeddings"}


QUEUE_DOWN = "The ingest could not be queued: the task broker (Redis) is unreachable. Delete this and upload again once it is back."


def _send_after_commit(task: str, model, pk: int) -> None:
    """Send the task named `task` with (pk) on queue "default" once the upload is committed. If the
    broker is down the row is marked FAILED with a clear message instead of staying PENDING forever."""
    from webapp import taskqueue

    def send():
        try:
            taskqueue.send(task, [pk], "default", retry=True,
                           retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
        except Exception as exc:  # kombu OperationalError, redis ConnectionError, ...
            log.error("could not queue %s for %s %s: %s", task, model.__name__, pk, exc)
            model.objects.filter(pk=pk, status=model.Status.PENDING).update(
                status=model.Status.FAILED, error=QUEUE_DOWN, finished_at=timezone.now())

    transaction.on_commit(send)


def _enqueue_ingest(corpus: Corpus) -> None:
    from webapp.taskqueue import INGEST_CORPUS

    _send_after_commit(INGEST_CORPUS, Corpus, corpus.pk)


def check_disk_quota(team, incoming_bytes: int) -> None:
    """UploadRejected (nothing stored) when the upload does not fit the team's disk quota."""
    from webapp.quotas import QuotaExceeded, check_can_store

    try:
        check_can_store(team, incoming_bytes)
    except QuotaExceeded as exc:
        raise UploadRejected([], str(exc)) from None


def create_corpus_upload(team, name: str, files: list, user=None, options: dict | None = None) -> Corpus:
    """Store the uploaded files of a new corpus and queue its ingest (after commit).

    Files that fail the upload checks become UploadIssue rows and the rest go on; when no file is
    usable, UploadRejected is raised and nothing is stored (no row, no folder), as it is when the
    files do not fit the team's disk quota."""
    check_upload_count(files)
    check_disk_quota(team, sum(getattr(f, "size", 0) or 0 for f in files))
    corpus = None
    try:
        with transaction.atomic():
            corpus = Corpus.objects.create(team=team, name=name, created_by=user,
                                           options={**DEFAULT_OPTIONS, **(options or {})})
            claim_new_folder(corpus.folder, f"corpus {corpus.pk}")
            saved, problems = store_uploads(files, corpus.upload_folder, CORPUS_SUFFIXES)
            if not saved:
                raise UploadRejected(problems)
            UploadIssue.objects.bulk_create(
                UploadIssue(corpus=corpus, filename=p.filename[:500], code=p.code, message=p.message) for p in problems
            )
            corpus.refresh_disk_bytes()
            _enqueue_ingest(corpus)
    except BaseException:
        if corpus is not None and corpus.pk:
            shutil.rmtree(corpus.folder, ignore_errors=True)
        raise
    return corpus


def create_corpus_from_paths(team, name: str, paths: list[Path], user=None) -> Corpus:
    """A corpus from files on this machine (the bundled sample corpus), ingested synchronously
    through the same pipeline as uploads. `paths`: files or folders (their files are taken);
    they are copied into the corpus folder, which the corpus then owns. Never raises for bad
    content: the corpus comes back READY or FAILED with its per-file issues."""
    corpus = Corpus.objects.create(team=team, name=name, created_by=user, options=dict(DEFAULT_OPTIONS))
    claim_new_folder(corpus.folder, f"corpus {corpus.pk}")
    try:
        folder = corpus.upload_folder
        folder.mkdir(parents=True, exist_ok=True)
        taken: set[str] = set()
        files = [f for p in paths for f in (sorted(x for x in Path(p).rglob("*") if x.is_file()
                                                   and not x.name.startswith("."))
                                            if Path(p).is_dir() else [Path(p)])]
        for path in files:
            target = folder / _unique_name(sanitize_filename(Path(path).name), taken)
            taken.add(target.name.lower())
            shutil.copyfile(path, target)
        corpus.refresh_disk_bytes()
        Corpus.objects.filter(pk=corpus.pk).update(status=Corpus.Status.INGESTING)
        corpus.status = Corpus.Status.INGESTING
        run_ingest(corpus)
    except Exception as exc:
        mark_failed(corpus, exc)
    corpus.refresh_from_db()
    return corpus


# -- corpora: ingest -------------------------------------------------------------------------


def load_default_tokenizer() -> tuple[Any, str]:
    """The default model's tokenizer (only the tokenizer) from its registered local folder, or
    (None, why) when there is none: the pipeline then estimates tokens from words.

    Imports transformers lazily: call this from the Celery task, never from a view."""
    from webapp.runs.models import ModelEntry

    entry = ModelEntry.objects.filter(name=settings.DEFAULT_MODEL_NAME).first()
    if entry is None:
        return None, f"no model named {settings.DEFAULT_MODEL_NAME!r} is registered"
    folder = Path(entry.path)
    if not folder.is_dir():
        return None, f"the folder of {entry.name} ({entry.path}) is missing"
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                  trust_remote_code=entry.trust_remote_code)
    except Exception as exc:  # a broken folder must not fail the ingest: fall back to the estimate
        log.warning("could not load the tokenizer of %s: %s", entry.name, exc)
        return None, f"the tokenizer of {entry.name} could not be loaded ({exc.__class__.__name__})"
    tokenizer.name_or_path = entry.name
    return tokenizer, f"tokenizer of {entry.name}"


def ingest_options(options: dict):
    from spell.data.clustering import ClusterOptions
    from spell.data.dedup import DedupOptions
    from spell.data.ingest import IngestOptions
    from spell.data.normalize import NormalizeOptions
    from spell.data.readers import ReaderLimits

    options = {**DEFAULT_OPTIONS, **(options or {})}
    return IngestOptions(
        limits=ReaderLimits(max_file_bytes=settings.UPLOAD_MAX_FILE_BYTES),
        normalize=NormalizeOptions(min_chars=int(options["min_chars"])),
        dedup=DedupOptions(threshold=float(options["dedup_threshold"])),
        clustering=ClusterOptions(target_size=int(options["cluster_size"]),
                                  min_size=min(ClusterOptions.min_size, int(options["cluster_size"])),
                                  embedder=embedder_for(options) if options["clustering"] == "embeddings" else None),
    )


# -- embedding models ------------------------------------------------------------------------
# The corpus form offers the bundled all-MiniLM-L6-v2 and the embedding folders found under
# MODEL_ROOT or registered by admins (ModelEntry); never a path typed in a form. The choice is
# stored as "folder:<path relative to MODEL_ROOT>" or "model:<ModelEntry name>" and resolved again
# (and checked again) when the ingest runs.


@dataclass(frozen=True)
class EmbeddingChoice:
    value: str  # "folder:<relative path>" or "model:<name>"
    name: str
    path: Path
    trust_remote_code: bool = False


def embedding_choices() -> list[EmbeddingChoice]:
    """The embedding folders a corpus upload may use, besides the bundled model: registered models
    whose local folder is an embedding folder, then the other embedding folders under MODEL_ROOT."""
    from spell.data.embeddings import embedding_folder_problem, find_embedding_folders
    from webapp.runs.models import ModelEntry

    choices: list[EmbeddingChoice] = []
    seen: set[Path] = set()
    for entry in ModelEntry.objects.filter(team__isnull=True).order_by("name"):  # shared ones: a team's are its checkpoints
        path = Path(entry.path)
        if path.is_absolute() and embedding_folder_problem(path) is None:
            choices.append(EmbeddingChoice(f"model:{entry.name}", entry.name, path, entry.trust_remote_code))
            seen.add(path.resolve())
    root = Path(settings.MODEL_ROOT)
    for path in find_embedding_folders(root):
        if path.resolve() not in seen:
            relative = path.relative_to(root).as_posix()
            choices.append(EmbeddingChoice(f"folder:{relative}", relative, path))
    return choices


def resolve_embedding_choice(value: str) -> EmbeddingChoice:
    """The folder an upload chose (a value of embedding_choices()), checked again now; ValueError
    naming the problem when it is no longer usable."""
    from spell.data.embeddings import embedding_folder_problem
    from webapp.runs.models import ModelEntry

    kind, _, key = (value or "").partition(":")
    if kind == "model":
        entry = ModelEntry.objects.filter(name=key, team__isnull=True).first()
        if entry is None:
            raise ValueError(f"the embedding model {key!r} chosen at upload is no longer registered")
        choice = EmbeddingChoice(value, entry.name, Path(entry.path), entry.trust_remote_code)
    elif kind == "folder":
        root = Path(settings.MODEL_ROOT).resolve()
        path = (root / key).resolve()
        if not key or PurePosixPath(key).is_absolute() or ".." in PurePosixPath(key).parts or not path.is_relative_to(root) \
                or path == root:
            raise ValueError(f"{key!r} is not a folder under the model root")
        choice = EmbeddingChoice(value, key, path)
    else:
        raise ValueError(f"unknown embedding model {value!r}")
    problem = embedding_folder_problem(choice.path)
    if problem:
        raise ValueError(f"the embedding model {choice.name!r} chosen at upload cannot be used: {problem}")
    return choice


def embedding_model_name(options: dict) -> str:
    """The name the corpus page shows for the embedding model of these options."""
    from spell.data.embeddings import BUNDLED_NAME

    value = (options or {}).get("embedding_model") or ""
    return value.partition(":")[2] or BUNDLED_NAME


def embedder_for(options: dict):
    """The embedder of the upload's choice: the bundled all-MiniLM-L6-v2, or a chosen folder."""
    value = (options or {}).get("embedding_model") or ""
    if not value:
        return shared_embedder()
    choice = resolve_embedding_choice(value)
    return shared_embedder(choice.path, trust_remote_code=choice.trust_remote_code)


_EMBEDDERS: dict[tuple[str, bool], Any] = {}
_EMBEDDERS_KEPT = 2


def shared_embedder(folder: Path | None = None, trust_remote_code: bool = False):
    """One sentence-embedding model per folder and process (loaded on its first use, kept for the
    next ingest; the two used last stay loaded). None: the bundled all-MiniLM-L6-v2."""
    from spell.data.embeddings import Embedder, MiniLM

    key = (str(folder) if folder is not None else "", trust_remote_code)
    embedder = _EMBEDDERS.pop(key, None)
    if embedder is None:
        embedder = MiniLM() if folder is None else Embedder(folder, trust_remote_code=trust_remote_code)
    _EMBEDDERS[key] = embedder  # most recent last
    while len(_EMBEDDERS) > _EMBEDDERS_KEPT:
        _EMBEDDERS.pop(next(iter(_EMBEDDERS)))
    return embedder


class ProgressRecorder:
    """The pipeline's progress callback: writes stage/done/total to the Corpus row, at most every
    `interval` seconds (and at every stage change and stage end): about two writes a second while
    a stage such as "embed" reports every batch. Raises CorpusGone when the corpus was deleted
    meanwhile, which stops the pipeline."""

    def __init__(self, corpus: Corpus, interval: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.corpus, self.interval, self.clock = corpus, interval, clock
        self._last = (None, 0.0)

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        last_stage, last_time = self._last
        if stage == last_stage and done < total and now - last_time < self.interval:
            return
        self._last = (stage, now)
        changed = Corpus.objects.filter(pk=self.corpus.pk).update(
            progress_stage=stage, progress_done=done, progress_total=total)
        if not changed:
            raise CorpusGone(self.corpus.pk)


class CorpusGone(Exception):
    """The corpus row disappeared (deleted during its ingest)."""


def run_ingest(corpus: Corpus, *, tokenizer_loader: Callable[[], tuple[Any, str]] = load_default_tokenizer,
               progress: Callable[[str, int, int], None] | None = None) -> Corpus:
    """Run spell.data.ingest on the corpus's files and store the result in one transaction."""
    from spell.data.ingest import ingest

    progress = progress or ProgressRecorder(corpus)
    progress("tokenizer", 0, 1)
    tokenizer, tokenizer_note = tokenizer_loader()
    paths = sorted(p for p in corpus.upload_folder.iterdir() if p.is_file()) if corpus.upload_folder.is_dir() else []
    options = dataclass_replace(ingest_options(corpus.options), decontaminate=team_eval_index(corpus.team))
    result = ingest(paths, tokenizer=tokenizer, options=options, progress=progress)
    save_ingest_result(corpus, result, tokenizer_note=None if tokenizer is not None else tokenizer_note)
    return corpus


def team_eval_index(team):
    """The n-grams of every ready evaluation set of the team (spell.data.decontam), or None when it
    has none: a corpus ingested for the team leaves out documents that copy their text. (A run
    checks again at launch, against its own sets, for sets uploaded after the corpus.)"""
    from spell.data.decontam import EvalIndex

    sets = list(EvalSet.objects.filter(team=team, status=EvalSet.Status.READY))
    if not sets:
        return None
    return EvalIndex.from_items(item for eval_set in sets for item in eval_set_items(eval_set))


def save_ingest_result(corpus: Corpus, result, tokenizer_note: str | None = None) -> None:
    """Documents, clusters, per-file issues and stats, all or nothing. A result with no document
    marks the corpus FAILED (its per-file issues say why)."""
    from dataclasses import asdict

    stats = asdict(result.stats)
    stats["notes"] = list(result.notes)
    if tokenizer_note:
        stats["notes"].insert(0, f"No model tokenizer: {tokenizer_note}.")
    stats["token_estimate"] = tokenizer_note is not None
    stats["text_bytes"] = sum(len(d.text.encode("utf-8")) for d in result.documents)
    # Copies of evaluation text first, so their titles are listed however many duplicates there are.
    listed = sorted(result.dropped, key=lambda d: d.reason != "contaminated")[:_DROPPED_KEPT]
    stats["dropped"] = [asdict(d) for d in listed]
    stats["dropped_total"] = len(result.dropped)
    stats["clustering"] = {**DEFAULT_OPTIONS, **(corpus.options or {})}["clustering"]
    if stats["clustering"] == "embeddings":
        stats["embedding_model"] = embedding_model_name(corpus.options)
    with transaction.atomic():
        locked = Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
        if locked is None:
            raise CorpusGone(corpus.pk)
        # Idempotent: a re-run replaces whatever an earlier attempt stored.
        Document.objects.filter(corpus=corpus).delete()
        Cluster.objects.filter(corpus=corpus).delete()
        UploadIssue.objects.filter(corpus=corpus, stage=UploadIssue.Stage.INGEST).delete()
        clusters = Cluster.objects.bulk_create(
            Cluster(corpus=corpus, key=c.id[:200], label=(c.label or "")[:300], numeric=c.numeric,
                    given=c.given, size=c.size, tokens=c.tokens)
            for c in result.clusters
        )
        by_key = {c.key: c for c in clusters}
        if any(c.pk is None for c in clusters):  # backends without RETURNING ids
            by_key = {c.key: c for c in Cluster.objects.filter(corpus=corpus)}
        Document.objects.bulk_create(
            (Document(corpus=corpus, cluster=by_key.get(d.cluster[:200]), external_id=d.id[:200],
                      title=(d.title or "")[:500], text=d.text, numeric=d.numeric_document,
                      tokens=d.tokens, source_file=d.source[:500]) for d in result.documents),
            batch_size=500,
        )
        UploadIssue.objects.bulk_create(
            UploadIssue(corpus=corpus, filename=e.source[:500], code=str(e.reason), message=e.message,
                        line=e.line, stage=UploadIssue.Stage.INGEST)
            for e in result.errors
        )
        failed = not result.documents
        Corpus.objects.filter(pk=corpus.pk).update(
            stats=stats, status=Corpus.Status.FAILED if failed else Corpus.Status.READY,
            error="No document could be read from the files (see the messages per file)." if failed else "",
            progress_stage="done", progress_done=1, progress_total=1, finished_at=timezone.now(),
            disk_bytes=folder_size(corpus.folder),
        )
    corpus.refresh_from_db()


def mark_failed(corpus: Corpus, exc: BaseException) -> None:
    """FAILED with a readable error, and no half-ingested rows."""
    message = str(exc) or exc.__class__.__name__
    with transaction.atomic():
        Document.objects.filter(corpus_id=corpus.pk).delete()
        Cluster.objects.filter(corpus_id=corpus.pk).delete()
        Corpus.objects.filter(pk=corpus.pk).update(
            status=Corpus.Status.FAILED, error=f"The ingest failed: {message}"[:5000], finished_at=timezone.now())


def claim_for_ingest(corpus_id: int) -> Corpus | None:
    """PENDING -> INGESTING with a conditional UPDATE; None when another attempt has it (or it
    was deleted)."""
    changed = Corpus.objects.filter(pk=corpus_id, status=Corpus.Status.PENDING).update(
        status=Corpus.Status.INGESTING, progress_stage="queued", progress_done=0, progress_total=0)
    return Corpus.objects.filter(pk=corpus_id).first() if changed == 1 else None


def progress_payload(corpus: Corpus) -> dict:
    """The small JSON the detail page polls."""
    total = corpus.progress_total or 0
    fraction = (corpus.progress_done / total) if total else 0.0
    stage_index = INGEST_STAGES.index(corpus.progress_stage) if corpus.progress_stage in INGEST_STAGES else 0
    overall = 1.0 if corpus.status == Corpus.Status.READY else min(
        0.99, (stage_index + fraction) / len(INGEST_STAGES))
    return {
        "id": corpus.pk, "status": corpus.status, "status_label": corpus.get_status_display(),
        "stage": corpus.progress_stage, "done": corpus.progress_done, "total": total,
        "overall": round(overall, 4), "finished": corpus.is_finished, "error": corpus.error,
    }


INGEST_STAGES = ("queued", "tokenizer", "read", "normalize", "dedup", "tokens", "numeric", "embed", "cluster", "done")


# -- corpora: views' helpers -----------------------------------------------------------------


def histogram_figure(stats: dict) -> dict:
    """Plotly data/layout for the token-length histogram stored in the stats."""
    bins = stats.get("length_histogram") or []
    labels = [f"{b['low']:,}–{b['high']:,}" if b.get("high") is not None else f"≥{b['low']:,}" for b in bins]
    counts = [b["count"] for b in bins]
    # Trim empty bins at the long end so short corpora get a readable chart.
    while len(counts) > 1 and counts[-1] == 0:
        labels.pop(), counts.pop()
    unit = "tokens (estimate)" if stats.get("token_estimate") else "tokens"
    return {
        "data": [{"type": "bar", "x": labels, "y": counts, "marker": {"color": "#3355cc"}}],
        "layout": {"title": {"text": "Document length"}, "xaxis": {"title": {"text": unit}},
                   "yaxis": {"title": {"text": "documents"}}, "margin": {"t": 40, "r": 10, "b": 60, "l": 50},
                   "height": 300},
    }


def cluster_figure(clusters) -> dict:
    """Plotly bar chart of the document sets (documents per set, numeric sets coloured)."""
    clusters = list(clusters)
    return {
        "data": [{"type": "bar", "x": [c.key for c in clusters], "y": [c.size for c in clusters],
                  "text": [c.label for c in clusters], "customdata": [c.pk for c in clusters],
                  "hovertemplate": "%{x}: %{y} documents<br>%{text}<extra></extra>",
                  "marker": {"color": ["#b36b00" if c.numeric else "#3355cc" for c in clusters]}}],
        "layout": {"title": {"text": "Document sets (orange: numeric)"}, "xaxis": {"title": {"text": "set"}},
                   "yaxis": {"title": {"text": "documents"}}, "margin": {"t": 40, "r": 10, "b": 60, "l": 50},
                   "height": 300},
    }


# -- corpora: snapshot for a run -------------------------------------------------------------


def write_training_corpus(corpus: Corpus, path) -> dict:
    """Write the corpus file of docs/architecture.md (`{"id", "text", "title", "cluster",
    "numeric"}` a line; `numeric` is the document set's flag) to `path`, atomically.
    Returns {"hash": sha256 of the file, "documents": n, "clusters": n}."""
    from spell.data.ingest import CorpusRecord, write_corpus_jsonl
    from spell.provenance import file_sha256

    if corpus.status != Corpus.Status.READY:
        raise ValueError(f"corpus {corpus.name!r} is not ready ({corpus.get_status_display().lower()})")
    rows = (Document.objects.filter(corpus=corpus).select_related("cluster").order_by("pk")
            .values_list("external_id", "text", "title", "cluster__key", "cluster__numeric"))
    records = [CorpusRecord(id=doc_id, text=text, cluster=key or "unclustered", title=title or None,
                            numeric=bool(numeric)) for doc_id, text, title, key, numeric in rows.iterator()]
    if not records:
        raise ValueError(f"corpus {corpus.name!r} has no documents")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = write_corpus_jsonl(records, target)
    return {"hash": file_sha256(target), "documents": written, "clusters": len({r.cluster for r in records})}


# -- evaluation sets -------------------------------------------------------------------------


def create_eval_set_upload(team, name: str, upload, user=None, format: str = "") -> EvalSet:
    """Store one eval-set file and queue reading it (after commit). UploadRejected if unusable."""
    problem = precheck_file(upload, EVAL_SUFFIXES)
    if problem:
        raise UploadRejected([problem], f"{problem.filename}: {problem.message}")
    check_disk_quota(team, getattr(upload, "size", 0) or 0)
    eval_set = None
    try:
        with transaction.atomic():
            eval_set = EvalSet.objects.create(team=team, name=name, created_by=user, format=format,
                                              source_file=sanitize_filename(upload.name))
            claim_new_folder(eval_set.folder, f"evaluation set {eval_set.pk}")
            _save_stream(upload, eval_set.upload_path)
            EvalSet.objects.filter(pk=eval_set.pk).update(disk_bytes=folder_size(eval_set.folder))
            from webapp.taskqueue import INGEST_EVAL_SET

            _send_after_commit(INGEST_EVAL_SET, EvalSet, eval_set.pk)
    except BaseException:
        if eval_set is not None and eval_set.pk:
            shutil.rmtree(eval_set.folder, ignore_errors=True)
        raise
    return eval_set


def claim_eval_set(eval_set_id: int) -> EvalSet | None:
    changed = EvalSet.objects.filter(pk=eval_set_id, status=EvalSet.Status.PENDING).update(
        status=EvalSet.Status.INGESTING)
    return EvalSet.objects.filter(pk=eval_set_id).first() if changed == 1 else None


def read_eval_set_file(eval_set: EvalSet) -> EvalSet:
    """Parse the uploaded file with spell.data.evalsets, write the items file, store counts.
    A format error marks the set FAILED with the reader's message (and no items file)."""
    import json
    import os
    from collections import Counter
    from dataclasses import asdict

    from spell.data.evalsets import EvalSetFormatError, detect_format, read_eval_set

    try:
        fmt = eval_set.format or detect_format(eval_set.upload_path)
        items = read_eval_set(eval_set.upload_path, fmt)
    except (EvalSetFormatError, UnicodeDecodeError, OSError) as exc:
        message = str(exc).replace(str(eval_set.upload_path), eval_set.source_file)
        if isinstance(exc, UnicodeDecodeError):
            message = f"{eval_set.source_file}: not UTF-8 text"
        EvalSet.objects.filter(pk=eval_set.pk).update(status=EvalSet.Status.FAILED, error=message[:5000],
                                                      finished_at=timezone.now())
        eval_set.refresh_from_db()
        return eval_set
    partial = eval_set.items_path.with_name("items.jsonl.partial")
    with open(partial, "w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
    os.replace(partial, eval_set.items_path)
    lengths = sorted(len(item.context.split()) for item in items)
    stats = {
        "tasks": dict(Counter(item.task for item in items)),
        "sources": dict(Counter(item.source for item in items)),
        "context_words": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1]},
    }
    EvalSet.objects.filter(pk=eval_set.pk).update(
        status=EvalSet.Status.READY, format=fmt, items=len(items), stats=stats, error="",
        finished_at=timezone.now(), disk_bytes=folder_size(eval_set.folder))
    eval_set.refresh_from_db()
    return eval_set


def eval_set_items(eval_set: EvalSet, limit: int | None = None) -> list:
    """The stored EvalItems (spell.data.evalsets.EvalItem), for the page and for runs."""
    import json

    from spell.data.evalsets import EvalItem

    items = []
    if not eval_set.items_path.exists():
        return items
    with open(eval_set.items_path, encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(items) >= limit:
                break
            items.append(EvalItem(**json.loads(line)))
    return items


def write_eval_set(eval_set: EvalSet, path) -> dict:
    """Copy the items file for a run (`{"path", "items", "hash"}`); the run's evaluation reads it."""
    from spell.provenance import file_sha256

    if eval_set.status != EvalSet.Status.READY:
        raise ValueError(f"eval set {eval_set.name!r} is not ready")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(eval_set.items_path, target)
    return {"path": str(target), "items": eval_set.items, "hash": file_sha256(target)}
