"""The admin fleet page, its JSON feed (polled for the sparklines) and the admin actions."""

from __future__ import annotations

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.access import admin_api, admin_required
from webapp.fleet import services
from webapp.fleet.models import Worker


def _runs():
    from webapp.runs.models import Run

    return Run


@require_GET
@admin_required
def index(request):
    Run = _runs()
    active = Run.objects.filter(state__in=(Run.State.RUNNING, Run.State.QUEUED, Run.State.LOST)).select_related("team")
    return render(request, "fleet/index.html", {
        "snapshot": services.fleet_snapshot(),
        "runs": active.order_by("state", "queued_at", "pk")[:200],
        "known_queues": services.known_queues(),
        "max_auto_requeues": services.max_auto_requeues(),
    })


@require_GET
@admin_api
def workers_json(request):
    return JsonResponse(services.fleet_snapshot())


def _act(request, pk: int, action, done: str):
    worker = get_object_or_404(Worker, pk=pk)
    try:
        action(worker)
    except services.FleetError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.format(worker=worker.hostname))
    return redirect("fleet:index")


@require_POST
@admin_required
def drain(request, pk: int):
    return _act(request, pk, services.drain, "{worker} is draining: it finishes its current run and takes no new one.")


@require_POST
@admin_required
def enable(request, pk: int):
    return _act(request, pk, services.enable, "{worker} takes runs again.")


@require_POST
@admin_required
def add_queue(request, pk: int):
    queue = request.POST.get("queue", "")
    return _act(request, pk, lambda w: services.add_queue(w, queue), f"{{worker}} now consumes {queue.strip()}.")


@require_POST
@admin_required
def remove_queue(request, pk: int):
    queue = request.POST.get("queue", "")
    return _act(request, pk, lambda w: services.remove_queue(w, queue), f"{{worker}} no longer consumes {queue.strip()}.")


@require_POST
@admin_required
def forget(request, pk: int):
    return _act(request, pk, services.forget, "{worker} removed from the list.")


@require_POST
@admin_required
def cancel_run(request, run_id: int):
    from webapp.runs import services as run_services

    run = get_object_or_404(_runs(), pk=run_id)
    try:
        messages.success(request, f"Run #{run.pk}: {run_services.cancel(run)}")
    except run_services.RunActionError as exc:
        messages.error(request, f"Run #{run.pk}: {exc}")
    return redirect("fleet:index")


@require_POST
@admin_required
def requeue_run(request, run_id: int):
    from webapp.runs import services as run_services

    run = get_object_or_404(_runs(), pk=run_id)
    if run_services.requeue(run):
        messages.success(request, f"Run #{run.pk} queued again on {run.queue}; it resumes from its last checkpoint.")
    else:
        messages.error(request, f"Run #{run.pk} is {run.get_state_display().lower()}: only a lost, failed or paused run can be requeued.")
    return redirect("fleet:index")
