"""Corpora pages: index, upload, detail (progress, stats, charts, cluster browser), delete, and
the same for evaluation sets. Thin: forms validate, services do the work. Objects of teams the
user is not a member of are 404s."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.corpora import services
from webapp.corpora.forms import CorpusUploadForm, EvalSetUploadForm
from webapp.corpora.models import Corpus, EvalSet


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


@require_GET
@login_required
def detail(request, pk: int):
    corpus = _corpus(request, pk)
    clusters = corpus.clusters.order_by("key")
    context = {
        "corpus": corpus,
        "clusters": clusters,
        "issues": corpus.issues.order_by("stage", "filename", "line", "pk"),
        "progress": services.progress_payload(corpus),
        "dropped": corpus.stats.get("dropped", []),
    }
    if corpus.status == Corpus.Status.READY:
        context["histogram"] = services.histogram_figure(corpus.stats)
        context["cluster_chart"] = services.cluster_figure(clusters)
    return render(request, "corpora/detail.html", context)


@require_GET
@login_required
def status(request, pk: int):
    return JsonResponse(services.progress_payload(_corpus(request, pk)))


@require_GET
@login_required
def cluster(request, pk: int, cluster_pk: int):
    corpus = _corpus(request, pk)
    cluster = get_object_or_404(corpus.clusters, pk=cluster_pk)
    documents = cluster.documents.order_by("pk").only("pk", "external_id", "title", "tokens", "numeric", "source_file", "text")
    page = Paginator(documents, 25).get_page(request.GET.get("page"))
    return render(request, "corpora/cluster.html", {"corpus": corpus, "cluster": cluster, "page": page,
                                                    "clusters": corpus.clusters.order_by("key")})


@require_GET
@login_required
def document(request, pk: int, doc_pk: int):
    corpus = _corpus(request, pk)
    doc = get_object_or_404(corpus.documents.select_related("cluster"), pk=doc_pk)
    return render(request, "corpora/document.html", {"corpus": corpus, "doc": doc})


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
