"""Corpora pages: index, upload, detail (progress, stats, charts, its documents, the document-set
browser), delete, and the same for evaluation sets. Thin: forms validate, services do the work.
Objects of teams the user is not a member of are 404s.

Users read "document set" for what the code calls a cluster (Cluster, `cluster` in the files)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from spell.data.numeric import NumericThresholds, profile_text
from webapp.accounts.access import require_member_somewhere
from webapp.corpora import services
from webapp.corpora.forms import CorpusUploadForm, EvalSetUploadForm
from webapp.corpora.markdown import is_markdown, render_markdown
from webapp.corpora.models import Cluster, Corpus, Document, EvalSet

DOCUMENTS_PER_PAGE = 25
# What the ingest's stages mean to a person (the progress line).
STAGE_LABELS = {
    "queued": "waiting for a worker", "tokenizer": "loading the tokenizer", "read": "reading the files",
    "normalize": "normalizing the text", "dedup": "dropping duplicates", "tokens": "counting tokens",
    "numeric": "finding numeric documents", "embed": "embedding the documents",
    "cluster": "grouping into document sets", "done": "done",
}


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def document_numeric_reason(doc: Document, thresholds: NumericThresholds = NumericThresholds()) -> str:
    """Why the numeric test said what it said about one document, in numbers."""
    p = profile_text(doc.text, thresholds)
    verdict = "numeric" if doc.numeric else "not numeric"
    return (f"{verdict}: {_percent(p.number_share)} of its {p.tokens} words are numbers (numeric from "
            f"{_percent(thresholds.min_number_share)}) and {_percent(p.table_line_share)} of its {p.lines} lines "
            f"look like table rows (numeric from {_percent(thresholds.min_table_line_share)}). Prose with "
            "figures in it stays under both.")


def set_numeric_reason(cluster: Cluster, numeric_docs: int, thresholds: NumericThresholds = NumericThresholds()) -> str:
    """Why a document set is numeric (it also feeds docmath_qa) or not."""
    size = cluster.size or 0
    share = numeric_docs / size if size else 0.0
    by_rule = size > 0 and share >= thresholds.min_numeric_doc_share
    counted = (f"{numeric_docs} of its {size} documents ({_percent(share)}) pass the numeric test; a set is "
               f"numeric from {_percent(thresholds.min_numeric_doc_share)}")
    if by_rule == cluster.numeric:
        return f"{'Numeric' if cluster.numeric else 'Not numeric'}: {counted}."
    return (f"{'Numeric' if cluster.numeric else 'Not numeric'} because the uploaded file says so (its "
            f"documents' numeric field wins over the test; {counted}).")


def _corpus(request, pk: int) -> Corpus:
    return get_object_or_404(Corpus.objects.visible_to(request.user).select_related("team"), pk=pk)


def _eval_set(request, pk: int) -> EvalSet:
    return get_object_or_404(EvalSet.objects.visible_to(request.user).select_related("team"), pk=pk)


@require_GET
@login_required
def index(request):
    corpora = Corpus.objects.visible_to(request.user).select_related("team").order_by("-created_at")
    eval_sets = EvalSet.objects.visible_to(request.user).select_related("team").order_by("-created_at")
    disk = (corpora.aggregate(b=Sum("disk_bytes"))["b"] or 0) + (eval_sets.aggregate(b=Sum("disk_bytes"))["b"] or 0)
    return render(request, "corpora/index.html", {"corpora": corpora, "eval_sets": eval_sets, "disk_bytes": disk})


@require_http_methods(["GET", "POST"])
@login_required
def upload(request):
    require_member_somewhere(request.user, "Uploading a corpus")
    form = CorpusUploadForm(request.POST or None, request.FILES or None, user=request.user)
    problems = []
    if request.method == "POST" and form.is_valid():
        try:
            corpus = services.create_corpus_upload(
                form.cleaned_data["team"], form.cleaned_data["name"], form.cleaned_data["files"],
                user=request.user, options=form.options())
        except services.UploadRejected as rejected:
            form.add_error("files", rejected.message)
            problems = rejected.problems
        else:
            refused = corpus.issues.count()
            if refused:
                messages.warning(request, f"{refused} file(s) were refused; see the messages below. The others are being ingested.")
            else:
                messages.success(request, "Upload received; the ingest has started.")
            return redirect("corpora:detail", pk=corpus.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "corpora/upload.html", {"form": form, "problems": problems}, status=status)


def _clusters_with_reasons(corpus: Corpus):
    clusters = list(corpus.clusters.order_by("key").annotate(numeric_docs=Count("documents", filter=Q(documents__numeric=True))))
    for cl in clusters:
        cl.numeric_reason = set_numeric_reason(cl, cl.numeric_docs)
    return clusters


@require_GET
@login_required
def detail(request, pk: int):
    corpus = _corpus(request, pk)
    clusters = _clusters_with_reasons(corpus)
    progress = services.progress_payload(corpus)
    context = {
        "corpus": corpus,
        "clusters": clusters,
        "issues": corpus.issues.order_by("stage", "filename", "line", "pk"),
        "progress": progress,
        "stage_label": STAGE_LABELS.get(progress.get("stage") or "queued", progress.get("stage") or ""),
        "stage_labels": STAGE_LABELS,
        "dropped": corpus.stats.get("dropped", []),
    }
    if corpus.status == Corpus.Status.READY:
        context["histogram"] = services.histogram_figure(corpus.stats)
        context["cluster_chart"] = services.cluster_figure(clusters)
        # Its documents, paged and searchable (title, id or text).
        query = request.GET.get("q", "").strip()[:200]
        documents = corpus.documents.select_related("cluster").order_by("pk").only(
            "pk", "external_id", "title", "tokens", "numeric", "source_file", "cluster__key", "cluster__label")
        if query:
            documents = documents.filter(Q(title__icontains=query) | Q(external_id__icontains=query) | Q(text__icontains=query))
        context["documents"] = Paginator(documents, DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
        context["query"] = query
    return render(request, "corpora/detail.html", context)


@require_GET
@login_required
def status(request, pk: int):
    return JsonResponse(services.progress_payload(_corpus(request, pk)))


@require_GET
@login_required
def cluster(request, pk: int, cluster_pk: int):
    corpus = _corpus(request, pk)
    cluster = get_object_or_404(corpus.clusters.annotate(numeric_docs=Count("documents", filter=Q(documents__numeric=True))),
                                pk=cluster_pk)
    documents = cluster.documents.order_by("pk").only("pk", "external_id", "title", "tokens", "numeric", "source_file", "text")
    page = Paginator(documents, DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "corpora/cluster.html", {"corpus": corpus, "cluster": cluster, "page": page,
                                                    "numeric_reason": set_numeric_reason(cluster, cluster.numeric_docs),
                                                    "clusters": corpus.clusters.order_by("key")})


@require_GET
@login_required
def document(request, pk: int, doc_pk: int):
    corpus = _corpus(request, pk)
    doc = get_object_or_404(corpus.documents.select_related("cluster"), pk=doc_pk)
    context = {"corpus": corpus, "doc": doc, "numeric_reason": document_numeric_reason(doc),
               "markdown": render_markdown(doc.text) if is_markdown(doc.source_file) else None}
    if doc.cluster is not None:
        numeric_docs = doc.cluster.documents.filter(numeric=True).count()
        context["set_numeric_reason"] = set_numeric_reason(doc.cluster, numeric_docs)
    return render(request, "corpora/document.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def delete(request, pk: int):
    corpus = _corpus(request, pk)
    if request.method == "POST":
        name = corpus.name
        corpus.delete()  # its files go once the delete commits (models._delete_files)
        messages.success(request, f"Deleted corpus {name!r} and its files.")
        return redirect("corpora:index")
    return render(request, "corpora/confirm_delete.html", {
        "object": corpus, "kind": "corpus", "what": f"{corpus.documents.count()} documents, "
        f"{corpus.clusters.count()} document sets and {corpus.disk_bytes} bytes of uploaded files"})


# -- evaluation sets -------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def evalset_upload(request):
    require_member_somewhere(request.user, "Uploading an evaluation set")
    form = EvalSetUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            eval_set = services.create_eval_set_upload(
                form.cleaned_data["team"], form.cleaned_data["name"], form.cleaned_data["file"],
                user=request.user, format=form.cleaned_data.get("format") or "")
        except services.UploadRejected as rejected:
            form.add_error("file", rejected.message)
        else:
            messages.success(request, "Evaluation set received; reading it now.")
            return redirect("corpora:evalset_detail", pk=eval_set.pk)
    return render(request, "corpora/evalset_upload.html", {"form": form},
                  status=400 if request.method == "POST" else 200)


@require_GET
@login_required
def evalset_detail(request, pk: int):
    eval_set = _eval_set(request, pk)
    items = services.eval_set_items(eval_set, limit=20) if eval_set.status == EvalSet.Status.READY else []
    return render(request, "corpora/evalset_detail.html", {"eval_set": eval_set, "items": items})


@require_GET
@login_required
def evalset_status(request, pk: int):
    eval_set = _eval_set(request, pk)
    return JsonResponse({"id": eval_set.pk, "status": eval_set.status, "status_label": eval_set.get_status_display(),
                         "finished": eval_set.is_finished, "items": eval_set.items, "error": eval_set.error,
                         "overall": 1.0 if eval_set.is_finished else 0.5})


@require_http_methods(["GET", "POST"])
@login_required
def evalset_delete(request, pk: int):
    eval_set = _eval_set(request, pk)
    if request.method == "POST":
        name = eval_set.name
        eval_set.delete()
        messages.success(request, f"Deleted evaluation set {name!r} and its files.")
        return redirect("corpora:index")
    return render(request, "corpora/confirm_delete.html", {
        "object": eval_set, "kind": "evaluation set",
        "what": f"{eval_set.items} items and {eval_set.disk_bytes} bytes of files"})
