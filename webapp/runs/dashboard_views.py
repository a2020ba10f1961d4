"""The live dashboard's endpoints: downsampled series, alarms, the triple stream, one sample with its
documents, and the comparison of several runs. Thin: reads here, chart and alarm logic in
webapp/runs/dashboard.py and webapp/runs/alarms.py."""

from __future__ import annotations

from typing import Any, Iterable

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from spell.config import describe_fields
from webapp.accounts.access import api_or_session_auth, member_teams, role_in
from webapp.runs import alarms, dashboard, services
from webapp.runs.models import MetricPoint, Run, RunEvent, Sample
from webapp.runs.views import get_run

TASKS = ("doc_general_qa", "doc_mc", "docmath_qa")
VERDICTS = ("YES", "NO", "INVALID", "SKIPPED")
ROLES = {"questioner": "questioner problems (no rollout)", "responder": "responder (answered)",
         "verifier": "verifier (judged)"}
NAME_EVENTS = 20  # the newest metrics events whose names the charts use (a task may skip a step)
TRIPLE_TEXT = 600  # characters of question / reference / response in the stream (the sample page has all)


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _json_run(request, pk: int) -> tuple[Run | None, JsonResponse | None]:
    """The run for a JSON endpoint, or a JSON 404 (outsider, no such run) / 403 (annotator)."""
    run = Run.objects.filter(pk=pk).select_related("team").first()
    role = role_in(request.user, run.team) if run else None
    if role is None:
        return None, _error("No such run.", 404)
    if role not in ("admin", "member"):
        return None, _error("You are not a member of this team.", 403)
    return run, None


# --- reads ---------------------------------------------------------------------------------------


def _flat_names(payload: dict, prefix: str, out: list[str]) -> list[str]:
    for key, value in payload.items():
        if isinstance(value, dict):
            _flat_names(value, f"{prefix}{key}.", out)
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            out.append(f"{prefix}{key}"[:200])
    return out


def available_names(run: Run) -> list[str]:
    """Metric names of the run's newest metrics events and its newest eval event (index scans of
    a few rows, never a DISTINCT over every point)."""
    names: list[str] = []
    qs = RunEvent.objects.filter(run=run, superseded=False)
    for payload in qs.filter(type="metrics").order_by("-seq").values_list("payload", flat=True)[:NAME_EVENTS]:
        _flat_names(payload or {}, "", names)
    for payload in qs.filter(type="eval").order_by("-seq").values_list("payload", flat=True)[:1]:
        _flat_names(payload or {}, "eval.", names)
    return list(dict.fromkeys(names))


def load_series(run: Run, names: Iterable[str], max_points: int, last_seq: int) -> dict[str, dict[str, Any]]:
    """Downsampled series of `names` (points stored up to `last_seq`, not superseded)."""
    names = list(names)
    if not names:
        return {}
    # No ORDER BY: sorting 100k rows by a text column spills to disk on PostgreSQL; Python sorts
    # each name's (step, seq) integers faster.
    raw: dict[str, list[tuple[int, int, float | None]]] = {}
    qs = (MetricPoint.objects.filter(run=run, superseded=False, name__in=names, seq__lte=last_seq)
          .order_by().values_list("name", "step", "seq", "value"))
    for name, step, seq, value in qs:
        raw.setdefault(name, []).append((step, seq, value))
    out = {}
    for name, rows in raw.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        out[name] = dashboard.series_payload([(step, value) for step, _, value in rows], max_points)
    return out


def run_alarms(run: Run) -> list[dict[str, Any]]:
    """alarms.evaluate over the newest alarms.POINTS_NEEDED steps (one indexed query)."""
    qs = (MetricPoint.objects.filter(run=run, superseded=False, name__in=alarms.NAMES,
                                     step__gt=run.last_step - alarms.POINTS_NEEDED)
          .order_by("step", "seq").values_list("name", "step", "value"))
    series: dict[str, list[tuple[int, float | None]]] = {}
    for name, step, value in qs:
        series.setdefault(name, []).append((step, value))
    return alarms.evaluate(series)


def _cut(text: str, n: int = TRIPLE_TEXT) -> str:
    return text if len(text) <= n else text[:n] + "…"


def triples_page(run: Run, params) -> dict[str, Any]:
    """Newest first, keyset by id (?before_id=), the filters of services.filter_samples plus ?role=."""
    try:
        before_id = int(params.get("before_id") or 0)
        limit = int(params.get("limit") or 50)
    except ValueError:
        raise ValueError("before_id and limit must be integers") from None
    if not 1 <= limit <= 200:
        raise ValueError("limit must be between 1 and 200")
    role = params.get("role") or ""
    if role and role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    qs = services.filter_samples(run, params)
    if role == "questioner":
        qs = qs.filter(response="")
    elif role == "responder":
        qs = qs.exclude(response="")
    elif role == "verifier":
        qs = qs.exclude(verdict__in=("", "SKIPPED"))
    if before_id:
        qs = qs.filter(id__lt=before_id)
    rows = list(qs.order_by("-id").values(
        "id", "seq", "step", "attempt", "task", "question", "reference", "response", "verdict", "majority",
        "rule_score", "rewards", "votes", "disagreement", "split_votes", "extra__questioner_status")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    for row in rows:
        row["questioner_status"] = row.pop("extra__questioner_status") or ""
        for key in ("question", "reference", "response"):
            row[key] = _cut(row[key] or "")
    return {"samples": rows, "next_before_id": rows[-1]["id"] if rows else before_id, "more": more}


# --- views ---------------------------------------------------------------------------------------


@api_or_session_auth
@require_GET
def series_json(request, pk: int):
    """?names=a,b (default: every charted name) &max_points=N (per series, min/max buckets beyond).
    `last_seq`: the newest event the series cover; the page applies live events after it."""
    run, denied = _json_run(request, pk)
    if denied:
        return denied
    try:
        max_points = dashboard.parse_max_points(request.GET.get("max_points"))
        names = dashboard.parse_names(request.GET.get("names"))
    except ValueError as exc:
        return _error(str(exc))
    last_seq = run.last_seq  # read before the points: anything newer arrives live
    available = available_names(run)
    wanted = names if names is not None else dashboard.chart_names(available)
    return JsonResponse({
        "run": run.pk, "state": run.state, "last_seq": last_seq, "last_step": run.last_step,
        "max_points": max_points, "charts": dashboard.chart_groups(available),
        "series": load_series(run, wanted, max_points, last_seq), "alarms": run_alarms(run),
    })


@api_or_session_auth
@require_GET
def alarms_json(request, pk: int):
    run, denied = _json_run(request, pk)
    if denied:
        return denied
    return JsonResponse({"run": run.pk, "last_step": run.last_step, "alarms": run_alarms(run)})


@api_or_session_auth
@require_GET
def triples_json(request, pk: int):
    """The triple table: ?before_id=&limit=&task=&verdict=&role=&disagreement=1&split_votes=1&step="""
    run, denied = _json_run(request, pk)
    if denied:
        return denied
    try:
        return JsonResponse({"run": run.pk, **triples_page(run, request.GET)})
    except ValueError as exc:
        return _error(str(exc))


@login_required
@require_GET
def sample_detail(request, pk: int, sample_id: int):
    """One triple in full: question, answers, verifier outputs, rewards, and the documents each
    role saw (from the run's corpus, looked up by the ids the process reported)."""
    run = get_run(request, pk)
    sample = get_object_or_404(Sample, run=run, pk=sample_id)
    extra = sample.extra or {}
    q_ids = [str(d) for d in extra.get("doc_ids") or [] if isinstance(d, (str, int))]
    r_ids = [str(d) for d in extra.get("responder_doc_ids") or [] if isinstance(d, (str, int))]
    docs: dict[str, Any] = {}
    if run.corpus_id and (q_ids or r_ids):
        from webapp.corpora.models import Document

        for d in Document.objects.filter(corpus_id=run.corpus_id, external_id__in=set(q_ids + r_ids)):
            docs[d.external_id] = d
    documents = [{"id": i, "doc": docs.get(i), "questioner": i in q_ids, "responder": i in r_ids}
                 for i in dict.fromkeys(q_ids + r_ids)]
    verifier = list(zip(sample.votes or [], extra.get("verifier_outputs") or [])) or [(v, "") for v in sample.votes or []]
    return render(request, "runs/dashboard_sample.html", {
        "run": run, "sample": sample, "extra": extra, "documents": documents, "verifier": verifier,
        "options": extra.get("options") if isinstance(extra.get("options"), dict) else None,
        "previous": Sample.objects.filter(run=run, id__lt=sample.id).order_by("-id").values_list("id", flat=True).first(),
        "next": Sample.objects.filter(run=run, id__gt=sample.id).order_by("id").values_list("id", flat=True).first(),
    })


@login_required
@require_GET
def sample_by_seq(request, pk: int, seq: int, index: int):
    """The live stream knows a triple by (seq, index) only: send it to the sample's page."""
    run = get_run(request, pk)
    sample = get_object_or_404(Sample, run=run, seq=seq, index=index)
    return redirect("runs:sample", pk=run.pk, sample_id=sample.pk)


@login_required
@require_GET
def compare(request):
    """?ids=1,2[,...]: the runs' metrics overlaid on the dashboard's charts, beside their config diff."""
    try:
        ids = dashboard.parse_ids(",".join(request.GET.getlist("ids")))
        max_points = dashboard.parse_max_points(request.GET.get("max_points") or "1000")
    except ValueError as exc:
        return render(request, "runs/dashboard_compare.html", {"error": str(exc), "runs": []}, status=400)
    found = {r.pk: r for r in Run.objects.filter(pk__in=ids, team__in=member_teams(request.user))
             .select_related("model_entry", "corpus")}
    if len(found) != len(ids):
        raise Http404("No run of yours with one of those numbers.")
    runs = [found[i] for i in ids]
    series = []
    for run in runs:
        names = dashboard.chart_names(available_names(run))
        series.append({"id": run.pk, "label": f"#{run.pk} {run.name}",
                       "series": load_series(run, names, max_points, run.last_seq)})
    columns = [{"id": r.pk, "values": {"preset": r.preset, "queue": r.queue, "model": str(r.model_entry or "—"),
                                       "corpus": str(r.corpus or "—"), **services.flatten(r.config)}} for r in runs]
    order = ["preset", "queue", "model", "corpus", *describe_fields().keys()]
    return render(request, "runs/dashboard_compare.html", {
        "runs": runs, "charts": dashboard.overlay(series), "diff": dashboard.config_table(columns, order),
        "ids": ",".join(str(i) for i in ids),
    })
