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
