"""What every page shares: the navigation's state (a context processor) and the product's own error
pages even in DEBUG (a middleware).

Django answers an unknown URL or an `Http404` with its technical page when DEBUG is on: every URL
pattern of the project listed, and no navigation. The embedded default (`make run`) runs with DEBUG
on, so a person who follows a stale link to a deleted run would meet that page. The middleware
replaces any such 404 with `templates/404.html` (status kept); tracebacks of a 500 stay technical in
DEBUG (that is what DEBUG is for). With DEBUG off, Django uses `handler404` / `handler403` /
`handler500` (webapp/urls.py) by itself and the middleware does nothing.
"""

from __future__ import annotations

from django.conf import settings

# Sections of the navigation, by the first segment of the path.
SECTIONS = {"corpora": "corpora", "runs": "runs", "review": "review", "fleet": "fleet", "admin": "admin"}
ACCOUNT_SECTIONS = {"teams": "teams", "team": "teams", "users": "teams", "tokens": "tokens"}


def current_section(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "home"
    if parts[0] == "accounts":
        return ACCOUNT_SECTIONS.get(parts[1], "") if len(parts) > 1 else ""
    return SECTIONS.get(parts[0], "")


class _Nav:
    """Evaluated lazily: a page that never reads `nav.can_run` costs no query."""

    def __init__(self, request):
        self._request = request
        self.section = current_section(request.path)
        self._can_run = None

    @property
    def can_run(self) -> bool:
        """May upload corpora and launch runs: an admin or a member of some team (not an annotator only)."""
        if self._can_run is None:
            from webapp.accounts.access import is_admin, member_teams

            user = getattr(self._request, "user", None)
            self._can_run = bool(user is not None and user.is_authenticated
                                 and (is_admin(user) or member_teams(user).exists()))
        return self._can_run


def navigation(request) -> dict:
    return {"nav": _Nav(request)}


class StyledNotFoundMiddleware:
    """In DEBUG, the project's 404 page instead of Django's technical one (which lists every URL pattern)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (settings.DEBUG and response.status_code == 404 and not getattr(response, "studio_page", False)
                and response.get("Content-Type", "").startswith("text/html")):
            from webapp.views import page_not_found

            return page_not_found(request, None)
        return response
