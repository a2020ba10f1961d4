"""Run pages and JSON endpoints. Thin: access checks here, logic in services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from spell.config import ConfigError, describe_fields
from webapp.accounts.access import api_or_session_auth, member_teams, require_member, require_member_somewhere, role_in
from webapp.quotas import QuotaExceeded
from webapp.runs import services
from webapp.runs.forms import SECTIONS, RunForm, form_values, preset_values_json
from webapp.runs.models import Run, Sample


def get_run(request, pk: int) -> Run:
    """The run, if `request.user` may see it: 404 for outsiders (no leak), 403 for annotators."""
    run = get_object_or_404(Run.objects.select_related("team", "corpus", "model_entry"), pk=pk)
    if role_in(request.user, run.team) is None:
        raise Http404("No such run.")
    require_member(request.user, run.team)
    return run


def _bad(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@login_required
@require_GET
def run_list(request):
    runs = Run.objects.filter(team__in=member_teams(request.user)).select_related("team", "corpus", "model_entry")
    return render(request, "runs/list.html", {"runs": runs[:200]})


@login_required
@require_http_methods(["GET", "POST"])
def run_new(request):
    require_member_somewhere(request.user, "Starting a run")
    source = None
    if request.method == "POST":
        form = RunForm(request.POST, user=request.user)
        if form.is_valid():
            d = form.cleaned_data
            source_id = request.POST.get("cloned_from") or ""
            if source_id.isdigit():
                source = Run.objects.filter(pk=int(source_id), team__in=member_teams(request.user)).first()
            try:
                run = services.launch(
                    team=d["corpus"].team, name=d["name"], corpus=d["corpus"], model_entry=d["model_entry"],
                    config=form.config, preset=d["preset"], queue=d["queue"], user=request.user, cloned_from=source,
                    audit=form.audit_settings(), eval_sets=d.get("eval_sets") or (),
                )
            except ConfigError as exc:  # the form validated; a change in between still gets a message
                form.add_error(None, str(exc))
            except QuotaExceeded as exc:
                form.add_error(None, str(exc))
            else:
                if getattr(run, "enqueue_error", ""):  # saved, but the broker is down: the reconciler sends it
                    messages.warning(request, f"Run “{run.name}” is saved as queued on {run.queue}. {run.enqueue_error}")
                else:
                    messages.success(request, f"Run “{run.name}” queued on {run.queue}.")
                return redirect("runs:detail", pk=run.pk)
    else:
        initial, config = {"preset": request.GET.get("preset", "cpu-demo")}, None
        if initial["preset"] not in services.PRESETS:
            initial["preset"] = "cpu-demo"
        if request.GET.get("corpus", "").isdigit():  # "Start a run" on a corpus page
            initial["corpus"] = int(request.GET["corpus"])
        if request.GET.get("clone", "").isdigit():
            source = get_run(request, int(request.GET["clone"]))
            clone = services.clone_initial(source)
            config = clone.pop("config")
            initial.update(clone)
            initial.update(form_values(config))
        form = RunForm(initial=initial, user=request.user, config=config)
    return render(request, "runs/new.html", {"form": form, "presets_json": preset_values_json(), "source": source})


@login_required
@require_GET
def run_detail(request, pk: int):
    run = get_run(request, pk)
    diff, against, diff_error = None, None, ""
    if request.GET.get("against"):
        try:
            against = Run.objects.filter(team__in=member_teams(request.user)).get(pk=int(request.GET["against"]))
            diff = services.config_diff(run, against)
        except (ValueError, Run.DoesNotExist):
            diff_error = "No run of yours with that number to compare with."
    infos = describe_fields()
    flat = services.flatten(run.config)
    config_sections = []
    for key, (title, _help) in SECTIONS.items():
        rows = [{"name": n, "key": i.key, "value": flat.get(n), "help": i.help} for n, i in infos.items() if i.section == key]
        config_sections.append({"key": key, "title": title, "rows": rows})
    samples = list(Sample.objects.filter(run=run, superseded=False).order_by("-id")[:20])
    context = {
        "run": run,
        "reward_note": services.reward_note(run.config),
        "progress_line": run.progress_line(),
        "total_steps": (run.config.get("run") or {}).get("steps"),
        "queue_position": run.queue_position(),
        "can_cancel": run.state in (Run.State.QUEUED, Run.State.RUNNING, Run.State.PAUSED, Run.State.LOST),
        "can_pause": run.state == Run.State.RUNNING and not run.requested_action,
        "can_resume": run.state in (Run.State.PAUSED, Run.State.FAILED, Run.State.LOST),
        "can_delete": run.state not in Run.ACTIVE,
        "config_sections": config_sections,
        "diff": diff, "against": against, "diff_error": diff_error,
        "other_runs": Run.objects.filter(team__in=member_teams(request.user)).exclude(pk=run.pk).only("id", "name")[:100],
        "metrics": services.latest_metrics(run),
        "samples": samples,
        "log": services.log_tail(run),
        "checkpoints": services.checkpoints(run),
        "latest_checkpoint": services.latest_checkpoint(run),
        "disk_bytes": services.refresh_disk_usage(run) if run.state != Run.State.RUNNING else run.disk_bytes,
    }
    return render(request, "runs/detail.html", context)


def _control(action):
    @login_required
    @require_POST
    def view(request, pk: int):
        run = get_run(request, pk)
        try:
            messages.success(request, action(run))
        except services.RunActionError as exc:
            messages.error(request, str(exc))
        return redirect("runs:detail", pk=run.pk)

    view.__name__ = f"run_{action.__name__}"
    return view


run_cancel = _control(services.cancel)
run_pause = _control(services.pause)
run_resume = _control(services.resume)


@login_required
@require_GET
def run_clone(request, pk: int):
    run = get_run(request, pk)
    return redirect(f"/runs/new?clone={run.pk}")


@login_required
@require_http_methods(["GET", "POST"])
def run_delete(request, pk: int):
    run = get_run(request, pk)
    labels = services.people_labels(run)
    if request.method == "POST":
        if request.POST.get("confirm") != run.name:
            messages.error(request, "Type the run's name to confirm.")
        elif labels["labels"] and request.POST.get("delete_labels") != "1":
            messages.error(request, f"This run has {labels['labels']} labels by {labels['annotators']} annotator(s): "
                                    "export them first if you need them, then tick the box to delete them too.")
        else:
            try:
                services.delete_run(run)
            except services.RunActionError as exc:
                messages.error(request, str(exc))
                return redirect("runs:detail", pk=run.pk)
            messages.success(request, f"Run “{run.name}” and its files were deleted.")
            return redirect("runs:list")
    return render(request, "runs/delete.html", {"run": run, "disk_bytes": services.refresh_disk_usage(run), "labels": labels})


# --- JSON and downloads ---------------------------------------------------------------------------


@api_or_session_auth
@require_GET
def run_events(request, pk: int):
    """Backfill: events with seq > ?after (default -1), oldest first, at most ?limit (500)."""
    run = get_run(request, pk)
    try:
        after = int(request.GET.get("after", -1))
        limit = max(1, min(int(request.GET.get("limit", 500)), 2000))
    except ValueError:
        return _bad("after and limit must be integers")
    events = services.events_after(run, after, limit + 1)
    return JsonResponse({
        "run": run.pk, "state": run.state, "events": events[:limit], "more": len(events) > limit,
        "last_seq": events[:limit][-1]["seq"] if events else after,
    })


@api_or_session_auth
@require_GET
def run_samples(request, pk: int):
    """Keyset pagination: ?after_id=&limit=&task=&step=&attempt=&verdict=&disagreement=1&split_votes=1&superseded=1"""
    run = get_run(request, pk)
    try:
        return JsonResponse({"run": run.pk, **services.samples_page(run, request.GET)})
    except ValueError as exc:
        return _bad(str(exc))


@api_or_session_auth
@require_GET
def metrics_csv(request, pk: int):
    run = get_run(request, pk)
    response = StreamingHttpResponse(services.metrics_csv(run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-metrics.csv"'
    return response


@api_or_session_auth
@require_GET
def metrics_json(request, pk: int):
    run = get_run(request, pk)
    response = JsonResponse(services.metrics_json(run))
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-metrics.json"'
    return response


@api_or_session_auth
@require_GET
def samples_jsonl(request, pk: int):
    run = get_run(request, pk)
    response = StreamingHttpResponse(services.samples_jsonl(run), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-samples.jsonl"'
    return response


@login_required
@require_GET
def run_log(request, pk: int):
    run = get_run(request, pk)
    return HttpResponse(services.log_tail(run, max_bytes=200_000), content_type="text/plain; charset=utf-8")


@login_required
@require_GET
def checkpoint_download(request, pk: int, name: str):
    """A checkpoint's model as a Hugging Face folder, zipped (streamed, not compressed)."""
    run = get_run(request, pk)
    try:
        folder = services.checkpoint_model_dir(run, name)
    except ValueError:
        raise Http404("No such checkpoint.") from None
    arcroot = f"run-{run.pk}-{name}"
    response = StreamingHttpResponse(services.zip_folder_stream(folder, arcroot), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{arcroot}.zip"'
    return response


@login_required
@require_POST
def checkpoint_register(request, pk: int, name: str):
    run = get_run(request, pk)
    try:
        entry = services.register_checkpoint(run, name, request.POST.get("model_name", ""), request.user)
    except ValueError as exc:
        messages.error(request, f"Not registered: {exc}.")
    else:
        messages.success(request, f"Registered model “{entry.name}”: choose it for a new run or an evaluation.")
    return redirect("runs:detail", pk=run.pk)

