"""The home page (what to do next, by role) and the project's error pages (404, 403, 500)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.template import loader
from django.http import HttpResponseServerError

from webapp.accounts.access import annotator_teams, is_admin, member_teams
from webapp.corpora.models import Corpus


def _next_steps(user) -> dict:
    """The first-run path for someone who may run: a ready corpus (the sample one first), a demo run
    to start, the run in progress, the latest runs."""
    from webapp.bootstrap import SAMPLE_CORPUS
    from webapp.runs.models import Run

    teams = member_teams(user)
    corpora = Corpus.objects.filter(team__in=teams).select_related("team")
    ready = corpora.filter(status=Corpus.Status.READY)
    sample = corpora.filter(name=SAMPLE_CORPUS).order_by("-created_at").first()
    start_corpus = sample if sample is not None and sample.status == Corpus.Status.READY else ready.order_by("-created_at").first()
    runs = Run.objects.filter(team__in=teams).select_related("team", "corpus")
    in_progress = list(runs.filter(state__in=(Run.State.RUNNING, Run.State.QUEUED, Run.State.PAUSED)).order_by("-created_at")[:3])
    for run in in_progress:
        run.total_steps = (run.config.get("run") or {}).get("steps") if isinstance(run.config, dict) else None
    return {
        "sample": sample,
        "start_corpus": start_corpus,
        "ingesting": corpora.filter(status__in=(Corpus.Status.PENDING, Corpus.Status.INGESTING)).order_by("-created_at").first(),
        "has_runs": runs.exists(),
        "in_progress": in_progress,
        "latest_runs": list(runs.order_by("-created_at")[:5]),
        "corpora": corpora.order_by("-created_at")[:10],
    }


@login_required
def home(request):
    user = request.user
    can_run = is_admin(user) or member_teams(user).exists()
    context: dict = {"can_run": can_run, "is_admin": is_admin(user)}
    if can_run:
        context.update(_next_steps(user))
    reviewable = annotator_teams(user)
    if reviewable.exists():
        from webapp.audits import services as review_services

        queues = review_services.queue_overview(user, reviewable)
        context["review_queues"] = queues
        context["review_for_you"] = sum(q["for_you"] for q in queues)
    context["no_team"] = not can_run and "review_queues" not in context
    return render(request, "home.html", context)


# --- error pages (handler404 / handler403 / handler500 in webapp/urls.py) ----------------------------


def _message(exception) -> str:
    """The reason a view gave, when it wrote one for people (not a resolver's dict or a model query)."""
    if exception is None or not exception.args:
        return ""
    message = exception.args[0]
    if not isinstance(message, str) or "matches the given query" in message:
        return ""
    return message


def page_not_found(request, exception=None):
    response = render(request, "404.html", {"reason": _message(exception), "path": request.path}, status=404)
    response.studio_page = True  # webapp.pages: already the styled page
    return response


def bad_request(request, exception=None):
    """A request Django refused while reading it (too many files, a body over the limits, a bad
    host...): the styled page, saying why when it is about an upload's limits."""
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent

    reason = ""
    if isinstance(exception, TooManyFilesSent):
        reason = (f"Too many files in one upload: at most {settings.UPLOAD_MAX_FILES} files are accepted. "
                  "Send the rest in another upload (or as one .zip).")
    elif isinstance(exception, (RequestDataTooBig, TooManyFieldsSent)):
        reason = "This form sent more data than the server accepts in one request."
    return render(request, "400.html", {"reason": reason, "path": request.path, "status": 400}, status=400)


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": _message(exception), "path": request.path}, status=403)


def server_error(request):
    """No request context: a 500 may come from the database itself, which the user lookup would need."""
    return HttpResponseServerError(loader.get_template("500.html").render({}))
