"""Account logic: teams, invitations, roles, API tokens. Views stay thin and call these."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from webapp.accounts.models import ApiToken, Invitation, Membership, Team, _hash

INVITATION_DAYS = 7


class AccountError(Exception):
    """Bad input for an account action; the message is shown where the user acted."""


def create_team(name: str, quota: int | None = None) -> Team:
    name = (name or "").strip()
    if not name:
        raise AccountError("A team needs a name.")
    slug = slugify(name)[:120]
    if not slug:
        raise AccountError("A team name needs at least one letter or digit.")
    if Team.objects.filter(name__iexact=name).exists() or Team.objects.filter(slug=slug).exists():
        raise AccountError(f"A team named {name!r} exists already.")
    try:
        with transaction.atomic():
            return Team.objects.create(name=name, slug=slug, **({"concurrent_run_quota": quota} if quota else {}))
    except IntegrityError as exc:  # a concurrent create
        raise AccountError(f"A team named {name!r} exists already.") from exc


def invite(team: Team, email: str, role: str, invited_by, accept_url) -> tuple[Invitation, str]:
    """Make a one-time invitation and e-mail its link. `accept_url(raw_key)` builds the absolute link."""
    if role not in Membership.Role.values:
        raise AccountError(f"Unknown role {role!r}: choose member or annotator.")
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        email=email, team=team, role=role, key_hash=_hash(raw), invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=getattr(settings, "INVITATION_DAYS", INVITATION_DAYS)),
    )
    link = accept_url(raw)
    send_mail(
        subject=f"You are invited to {team.name} on SPELL Studio",
        message=(
            f"{invited_by.get_username() if invited_by else 'An admin'} invited you to the team {team.name} "
            f"as {invitation.get_role_display().lower()}.\n\nOpen this link to join (it works once, for "
            f"{INVITATION_DAYS} days):\n{link}\n"
        ),
        from_email=None,
        recipient_list=[email],
    )
    return invitation, link


def accept(invitation: Invitation, user) -> Membership:
    """Join the invitation's team with its role (once). An existing membership keeps the wider role."""
    with transaction.atomic():
        changed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now(), accepted_by=user
        )
        if changed != 1:
            raise AccountError("This invitation has been used already.")
        membership, created = Membership.objects.get_or_create(
            user=user, team=invitation.team, defaults={"role": invitation.role}
        )
        if not created and invitation.role == Membership.Role.MEMBER and membership.role != invitation.role:
            membership.role = invitation.role
            membership.save(update_fields=["role"])
    return membership


def create_invited_user(invitation: Invitation, username: str, password: str):
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=invitation.email, password=password)
        accept(invitation, user)
    return user


def add_member(team: Team, username: str, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise AccountError(f"Unknown role {role!r}: choose member or annotator.")
    user = get_user_model().objects.filter(username=(username or "").strip()).first()
    if user is None:
        raise AccountError(f"No user named {username!r}: invite them by e-mail instead.")
    membership, created = Membership.objects.get_or_create(user=user, team=team, defaults={"role": role})
    if not created:
        raise AccountError(f"{user.username} is in {team.name} already ({membership.get_role_display().lower()}).")
    return membership


def set_role(membership: Membership, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise AccountError(f"Unknown role {role!r}: choose member or annotator.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def set_admin(user, is_admin: bool, acting_user) -> None:
    if user.pk == acting_user.pk and not is_admin:
        raise AccountError("You cannot take away your own admin rights (ask another admin).")
    # Admin is global: the app's pages (is_staff) and the Django admin site's models (is_superuser).
    user.is_staff = is_admin
    user.is_superuser = is_admin
    user.save(update_fields=["is_staff", "is_superuser"])


def _whole(value, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AccountError(f"{what} is a whole number.") from None
    if not low <= number <= high:
        raise AccountError(f"{what} is between {low} and {high:,}.")
    return number


def set_quota(team: Team, quota, queued=None, disk_gib=None) -> Team:
    """Runs at once (0 stops new runs from starting), runs waiting QUEUED (0: none is queued), disk in
    GiB (0: no limit); a value left out keeps the current one."""
    team.concurrent_run_quota = _whole(quota, "The quota of runs at once", 0, 1000)
    if queued not in (None, ""):
        team.queued_run_quota = _whole(queued, "The quota of queued runs", 0, 10000)
    if disk_gib not in (None, ""):
        team.disk_quota_gib = _whole(disk_gib, "The disk quota", 0, 1_000_000)
    team.save(update_fields=["concurrent_run_quota", "queued_run_quota", "disk_quota_gib"])
    return team


def issue_token(user, name: str) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    if not name:
        raise AccountError("Give the token a name (what script uses it).")
    if len(name) > 100:
        raise AccountError("A token name is at most 100 characters.")
    if user.api_tokens.count() >= getattr(settings, "API_TOKENS_PER_USER", 20):
        raise AccountError("You have too many tokens: revoke one you no longer use.")
    return ApiToken.issue(user, name)
