"""The people the access tests act as: team A (owner / teammate / annotator), team B (outsider), an admin."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from webapp.accounts.models import Membership, Team

PASSWORD = "pw-for-tests-1"


@dataclass
class People:
    team: Team
    other_team: Team
    admin: object
    owner: object
    teammate: object
    annotator: object
    outsider: object


def make_people() -> People:
    User = get_user_model()
    team = Team.objects.create(name="Team A", slug="team-a")
    other = Team.objects.create(name="Team B", slug="team-b")

    def user(name, team=None, role=Membership.Role.MEMBER, **extra):
        u = User.objects.create_user(name, email=f"{name}@example.com", password=PASSWORD, **extra)
        if team is not None:
            Membership.objects.create(user=u, team=team, role=role)
        return u

    return People(
        team=team,
        other_team=other,
        admin=user("admin", is_staff=True, is_superuser=True),
        owner=user("owner", team),
        teammate=user("teammate", team),
        annotator=user("annotator", team, Membership.Role.ANNOTATOR),
        outsider=user("outsider", other),
    )
