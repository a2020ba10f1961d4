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
