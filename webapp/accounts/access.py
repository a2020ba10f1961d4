"""Who may see and do what. Every view and consumer asks here; nothing checks roles by hand.

Roles: admin (global, `user.is_staff`), team member (corpora and runs of the team), team annotator
(the team's review queue only). Objects a team owns are looked up through these querysets, so an
object of another team is a 404, never a leak.
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied

from webapp.accounts.models import Membership, Team, teams_for


def is_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def member_teams(user):
    """Teams whose corpora and runs `user` may use (all for an admin)."""
    return teams_for(user, role=Membership.Role.MEMBER)


def annotator_teams(user):
    """Teams whose review queue `user` may work on (members may review too; admins everywhere)."""
    return teams_for(user)


def role_in(user, team: Team) -> str | None:
    if is_admin(user):
        return "admin"
    membership = Membership.objects.filter(user=user, team=team).only("role").first()
    return membership.role if membership else None


def require_member(user, team: Team) -> None:
    if role_in(user, team) not in ("admin", Membership.Role.MEMBER):
        raise PermissionDenied("You are not a member of this team.")


def require_member_somewhere(user, doing: str) -> None:
    """Pages that create a team's objects (upload, new run): an annotator-only user gets a 403 that
    says why, not a form whose team list is empty."""
    if not is_admin(user) and not member_teams(user).exists():
        raise PermissionDenied(f"{doing} needs a member's role in a team; you review only. "
                               "Ask a team admin to make you a member.")


def admin_required(view):
    """For admin-only pages: anonymous -> login redirect, logged-in non-admin -> 403."""
    from django.contrib.auth.decorators import login_required

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDenied("Admins only.")
        return view(request, *args, **kwargs)

    return wrapper


def require_annotator(user, team: Team) -> None:
    if role_in(user, team) is None:
        raise PermissionDenied("You are not in this team.")


def bearer_token(request) -> str | None:
    """The token of an `Authorization: Bearer ...` header ("" for a malformed one, None for none)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _json_error(message: str, status: int):
    from django.http import JsonResponse

    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="spell-studio"'
    return response


def api_or_session_auth(view):
    """For JSON endpoints scripts call too: a logged-in session (with CSRF on unsafe methods) or an
    `Authorization: Bearer <API token>` header; the token acts with its user's rights. Neither ->
    401 JSON (never a login redirect). The view still checks what the user may see."""
    from django.middleware.csrf import CsrfViewMiddleware
    from django.utils import timezone
    from django.views.decorators.csrf import csrf_exempt

    from webapp.accounts.models import ApiToken

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        raw = bearer_token(request)
        if raw is not None:
            token = ApiToken.find(raw)
            if token is None:
                return _json_error("Invalid or revoked API token.", 401)
            if token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60:
                ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
            request.user = token.user
            request.api_token = token
            request._dont_enforce_csrf_checks = True  # a header a browser never sends on its own
        else:
            if not request.user.is_authenticated:
                return _json_error("Log in or send an API token (Authorization: Bearer ...).", 401)
            rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if rejected is not None:
                return _json_error("CSRF check failed: reload the page and try again.", 403)
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def admin_api(view):
    """api_or_session_auth, then admins only (403 JSON for others)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            return _json_error("Admins only.", 403)
        return view(request, *args, **kwargs)

    return api_or_session_auth(wrapper)
