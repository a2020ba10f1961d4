"""Teams and memberships. Every object a team owns points to its Team; admins are global
(`User.is_staff`), members and annotators act through a Membership."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    concurrent_run_quota = models.PositiveIntegerField(
        default=2, help_text="How many runs of this team may be RUNNING at once."
    )
    queued_run_quota = models.PositiveIntegerField(
        default=20, help_text="How many runs of this team may wait QUEUED at once (0: no new run is queued)."
    )
    disk_quota_gib = models.PositiveIntegerField(
        default=0, help_text="Disk for the team's corpora, evaluation sets and runs, in GiB (0: no limit)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"  # corpora and runs of the team
        ANNOTATOR = "annotator", "Annotator"  # the team's review queue only

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


def teams_for(user, role: str | None = None):
    """Teams whose objects `user` may see (all teams for an admin)."""
    if not user.is_authenticated:
        return Team.objects.none()
    if user.is_staff:
        return Team.objects.all()
    memberships = Membership.objects.filter(user=user)
    if role:
        memberships = memberships.filter(role=role)
    return Team.objects.filter(id__in=memberships.values("team_id"))


def _hash(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A Bearer token for scripts, with the same rights as its user. Only a hash is stored; the
    token itself is shown once, when it is made."""

    PREFIX = "spell_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=16, help_text="The first characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        import secrets

        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=_hash(raw), hint=raw[: len(cls.PREFIX) + 4])
        return token, raw

    @classmethod
    def find(cls, raw: str) -> "ApiToken | None":
        if not raw:
            return None
        return cls.objects.select_related("user").filter(key_hash=_hash(raw), user__is_active=True).first()


class Invitation(models.Model):
    """A one-time link an admin sends to an e-mail address: following it creates the account (or,
    for a logged-in user, adds the membership) in `team` with `role`."""

    email = models.EmailField()
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    key_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} -> {self.team} ({self.role})"

    @classmethod
    def find_open(cls, raw: str) -> "Invitation | None":
        from django.utils import timezone

        if not raw:
            return None
        return cls.objects.select_related("team").filter(
            key_hash=_hash(raw), accepted_at__isnull=True, expires_at__gt=timezone.now()
        ).first()


class LoginFailure(models.Model):
    """One failed login, for the rate limiter (kept in the database so every web process sees it)."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
