"""The JSON API scripts use with an API token (`Authorization: Bearer ...`): launch a run, read one.

Reading metrics and samples goes through the run's JSON endpoints (views.py), which accept a token too.
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.views.decorators.http import require_http_methods

from spell.config import ConfigError
from webapp.accounts.access import api_or_session_auth, member_teams
from webapp.corpora.models import Corpus, EvalSet
from webapp.quotas import QuotaExceeded
from webapp.runs import services
from webapp.runs.models import ModelEntry, Run


def _error(message: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def run_summary(run: Run) -> dict:
    return {
        "id": run.pk, "name": run.name, "team": run.team.slug, "state": run.state, "queue": run.queue,
        "attempt": run.attempt, "last_step": run.last_step, "last_seq": run.last_seq, "error": run.error,
        "eval_sets": [s.name for s in run.eval_sets.all()], "url": f"/runs/{run.pk}/",
    }


@api_or_session_auth
@require_http_methods(["GET", "POST"])
def runs_api(request):
    """GET: the runs of the caller's teams. POST {name, corpus, model, preset?, queue?, overrides?, eval_sets?}: launch."""
    if request.method == "GET":
        runs = (Run.objects.filter(team__in=member_teams(request.user)).select_related("team")
                .prefetch_related("eval_sets").order_by("-pk")[:200])
        return JsonResponse({"runs": [run_summary(run) for run in runs]})
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return _error("the body must be a JSON object")
    if not isinstance(body, dict):
        return _error("the body must be a JSON object")
    if _has_nul(body):  # PostgreSQL text and jsonb cannot store it: refuse it here, not with a 500
        return _error("the body holds a NUL character (\\u0000), which no field accepts")
    name = str(body.get("name") or "").strip()
    if not name or len(name) > 200:
        return _error("name: give a name of 1-200 characters", field="name")
    corpus = Corpus.objects.filter(
        team__in=member_teams(request.user), pk=body.get("corpus") if str(body.get("corpus", "")).isdigit() else None
    ).first()
    if corpus is None or corpus.status != Corpus.Status.READY:
        return _error("corpus: give the id of a ready corpus of one of your teams", field="corpus")
    usable = ModelEntry.objects.usable_for(corpus.team)  # shared models and the corpus's team's own
    model_entry = usable.filter(name=str(body.get("model") or "")).first()
    if model_entry is None:
        return _error("model: give the name of a model shared with or registered by the corpus's team", field="model",
                      choices=list(usable.order_by("name").values_list("name", flat=True)))
    overrides = body.get("overrides") or {}
    if not isinstance(overrides, dict):
        return _error("overrides: a JSON object of dotted config fields", field="overrides")
    for knob in services.SERVER_PATH_FIELDS:
        if knob in overrides:
            return _error(f"overrides: {knob} takes server paths; name your team's evaluation sets in eval_sets",
                          field="overrides")
    wanted = body.get("eval_sets") or []
    if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
        return _error("eval_sets: a list of evaluation set names", field="eval_sets")
    eval_sets, unknown = services.eval_sets_by_name(corpus.team, wanted)
    if unknown:
        return _error(f"eval_sets: no ready evaluation set named {', '.join(unknown)} in team {corpus.team}",
                      field="eval_sets", choices=sorted(EvalSet.objects.filter(
                          team=corpus.team, status=EvalSet.Status.READY).values_list("name", flat=True)))
    preset, queue = str(body.get("preset") or "cpu-demo"), str(body.get("queue") or "cpu")
    try:
        config = services.build_config(preset, overrides, model_entry, queue)
        run = services.launch(team=corpus.team, name=name, corpus=corpus, model_entry=model_entry, config=config,
                              preset=preset, queue=queue, user=request.user, eval_sets=eval_sets)
    except ConfigError as exc:
        errors = getattr(exc, "errors", None) or [exc]
        return _error("invalid config", errors=[{"field": e.field, "reason": e.reason} for e in errors])
    except QuotaExceeded as exc:
        return _error(str(exc), status=409)
    except (TypeError, ValueError) as exc:
        return _error(f"invalid config: {exc}")
    summary = run_summary(run)
    if getattr(run, "enqueue_error", ""):  # saved and QUEUED; the reconciler sends it once the broker is back
        summary["warning"] = run.enqueue_error
    return JsonResponse(summary, status=201)
