"""Review queue pages and JSON endpoints. Thin: who may see what here, the logic in services.

Items and runs of teams the user is not in are 404 (never a leak); exports are for team members
(an annotator gets 403); the log is for admins.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.access import admin_required, annotator_teams, api_or_session_auth, is_admin, role_in
from webapp.audits import services
from webapp.audits.excerpts import excerpts_for
from webapp.audits.metrics import LABELS
from webapp.audits.models import Label, ReviewItem, ReviewLog
from webapp.runs.models import Run

KEYS = dict(zip(LABELS, ("1", "2", "3")))


def _review_run(request, run_id: int) -> Run:
    return get_object_or_404(Run.objects.select_related("team"), pk=run_id, team__in=annotator_teams(request.user))


def _review_item(request, pk: int) -> ReviewItem:
    return get_object_or_404(ReviewItem.objects.select_related("run", "run__team", "sample"), pk=pk,
                             team__in=annotator_teams(request.user))


@login_required
@require_GET
def index(request):
    teams = annotator_teams(request.user)
    queues = services.queue_overview(request.user, teams)
    # Counts that add up: waiting (no label yet) + labelled (at least one) = in all.
    totals = {row["run_id"]: row for row in ReviewItem.objects.filter(run_id__in=[q["run"].pk for q in queues])
              .values("run_id").annotate(items=Count("id"), labelled=Count("id", filter=Q(label_count__gt=0)),
                                         second=Count("id", filter=Q(label_count__gt=0, label_count__lt=F("needed_labels"))))
              .order_by()}
    for q in queues:
        row = totals.get(q["run"].pk, {"items": 0, "labelled": 0, "second": 0})
        q.update(items=row["items"], labelled=row["labelled"], waiting=row["items"] - row["labelled"], second=row["second"])
    return render(request, "audits/index.html", {"queues": queues, "is_admin": is_admin(request.user)})


@login_required
@require_GET
def next_item(request, run_id: int):
    run = _review_run(request, run_id)
    skip = request.GET.get("skip", "")
    item = services.reserve_next(request.user, run, skip=int(skip) if skip.isdigit() else None)
    if item is None:
        prev_id = (Label.objects.filter(annotator=request.user, item__run=run).order_by("-created", "-id")
                   .values_list("item_id", flat=True).first())
        return render(request, "audits/empty.html", {"run": run, "prev_id": prev_id})
    return redirect("audits:item", pk=item.pk)


def _item_page(request, item: ReviewItem, *, error: str = "", status: int = 200, chosen: str = "", note: str = ""):
    mine = Label.objects.filter(item=item, annotator=request.user).first()
    reserved = False
    if mine is None and not item.is_complete:
        reserved = services.reserve_item(item, request.user)
    prev_id, next_id = services.neighbours(request.user, item)
    next_url = (reverse("audits:item", args=[next_id]) if next_id
                else reverse("audits:next", args=[item.run_id]) + ("" if mine else f"?skip={item.pk}"))
    sample, extra = item.sample, item.sample.extra if isinstance(item.sample.extra, dict) else {}
    options = extra.get("options") if isinstance(extra.get("options"), dict) else None
    context = {
        "item": item, "run": item.run, "sample": sample, "options": sorted(options.items()) if options else None,
        "excerpts": excerpts_for(sample, item.run.corpus_id), "mine": mine, "revealed": mine is not None,
        "can_label": mine is not None or reserved,
        "busy": mine is None and not reserved and not item.is_complete,
        "complete": mine is None and item.is_complete,
        "choices": [(value, label, KEYS[value]) for value, label in Label.Value.choices],
        "chosen": chosen or (mine.label if mine else ""), "note": note or (mine.note if mine else ""),
        "error": error, "prev_url": reverse("audits:item", args=[prev_id]) if prev_id else "", "next_url": next_url,
        "verifier_outputs": extra.get("verifier_outputs") if mine is not None else None,
        "extracted_answer": extra.get("extracted_answer"),
        "memory_depth": extra.get("memory_depth"),
    }
    return render(request, "audits/item.html", context, status=status)


@login_required
@require_GET
def item_page(request, pk: int):
    return _item_page(request, _review_item(request, pk))


@login_required
@require_POST
def submit(request, pk: int):
    item = _review_item(request, pk)
    label, note = request.POST.get("label", ""), request.POST.get("note", "")
    relabel = Label.objects.filter(item=item, annotator=request.user).exists()
    try:
        saved = services.submit_label(request.user, item, label, note)
    except services.ReviewError as exc:
        return _item_page(request, item, error=str(exc), status=400, chosen=label, note=note)
    except services.ReviewConflict as exc:
        item.refresh_from_db()
        return _item_page(request, item, error=str(exc), status=409, chosen=label, note=note)
    # A first label moves on to the next item (Shift+Enter, `stay`, keeps this one open with the
    # verifier's verdict); a changed label stays: the person came back to this item on purpose.
    if relabel or request.POST.get("stay"):
        return redirect("audits:item", pk=item.pk)
    said = "YES (equivalent)" if item.verifier_yes else "NO (not equivalent)"
    agree = (saved.label == Label.Value.EQUIVALENT) == item.verifier_yes if saved.label != Label.Value.UNSURE else None
    verdict = "" if agree is None else (" You agree." if agree else " You disagree.")
    messages.info(request, f"Item {item.pk} labelled {saved.get_label_display()}: the verifier said {said}.{verdict} "
                           "Press K to go back to it.")
    return redirect("audits:next", run_id=item.run_id)


def _json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _int_param(request, name: str, low: int, high: int) -> int | None:
    raw = request.GET.get(name, "").strip()
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw[:40]!r}.") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}.")
    return value


@require_GET
@api_or_session_auth
def metrics_json(request, run_id: int):
    run = Run.objects.filter(pk=run_id, team__in=annotator_teams(request.user)).first()
    if run is None:
        return _json_error("No such run.", 404)
    try:
        limit = 10**9
        filters = services.Filters(
            task=request.GET.get("task", "").strip()[:40] or None,
            stage=_int_param(request, "stage", -limit, limit),
            step_min=_int_param(request, "step_min", -limit, limit),
            step_max=_int_param(request, "step_max", -limit, limit),
            unbiased={"all": False, "unbiased": True}[request.GET.get("sample", "all")],
        )
        bucket = _int_param(request, "bucket", 1, limit)
    except KeyError:
        return _json_error("sample must be 'all' or 'unbiased'.", 400)
    except ValueError as exc:
        return _json_error(str(exc), 400)
    if filters.step_min is not None and filters.step_max is not None and filters.step_min > filters.step_max:
        return _json_error("step_min must not be above step_max.", 400)
    return JsonResponse(services.run_metrics(run, filters, bucket))


@require_GET
@api_or_session_auth
def labels_jsonl(request, run_id: int):
    run = Run.objects.filter(pk=run_id).select_related("team").first()
    if run is None or role_in(request.user, run.team) is None:
        return _json_error("No such run.", 404)
    if role_in(request.user, run.team) not in ("admin", "member"):
        return _json_error("Exports are for team members.", 403)
    response = StreamingHttpResponse(services.export_jsonl(run), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-labels.jsonl"'
    return response


@admin_required
@require_GET
def review_log(request):
    entries = ReviewLog.objects.all()
    run = request.GET.get("run", "")
    if run:
        if not run.isdigit():
            return render(request, "audits/log.html", {"error": "run must be a run number."}, status=400)
        entries = entries.filter(run_id=int(run))
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    return render(request, "audits/log.html", {"page": page, "run": run})


@login_required
@require_GET
def progress(request):
    teams = annotator_teams(request.user)
    return render(request, "audits/progress.html", {
        "annotators": services.annotator_progress(teams), "runs": services.run_progress(teams),
    })

