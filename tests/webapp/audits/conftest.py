"""Audits fixtures: team A (owner, teammate, two annotators), team B (outsider and its annotator),
an admin; runs and samples as the relay stores them; a helper that queues items directly."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

import pytest
from django.contrib.auth import get_user_model

from webapp.accounts.models import Membership, Team
from webapp.audits.models import ReviewItem
from webapp.runs.models import Run, Sample

PASSWORD = "pw-for-tests-1"
_seq = count(1)


@dataclass
class People:
    team: Team
    other_team: Team
    admin: object
    owner: object
    teammate: object
    annotator: object
    annotator2: object
    outsider: object
    other_annotator: object


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Seven users a test: the default hasher's deliberate slowness would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db) -> People:
    User = get_user_model()
    team = Team.objects.create(name="Team A", slug="team-a")
    other = Team.objects.create(name="Team B", slug="team-b")

    def user(name, team=None, role=Membership.Role.MEMBER, **extra):
        u = User.objects.create_user(name, email=f"{name}@example.com", password=PASSWORD, **extra)
        if team is not None:
            Membership.objects.create(user=u, team=team, role=role)
        return u

    return People(
        team=team, other_team=other, admin=user("admin", is_staff=True), owner=user("owner", team),
        teammate=user("teammate", team), annotator=user("annotator", team, Membership.Role.ANNOTATOR),
        annotator2=user("annotator2", team, Membership.Role.ANNOTATOR), outsider=user("outsider", other),
        other_annotator=user("other_annotator", other, Membership.Role.ANNOTATOR),
    )


def make_run(team, audit=None, name="run", **fields) -> Run:
    return Run.objects.create(team=team, name=name, config={"seed": 1}, audit=audit or {},
                              state=Run.State.RUNNING, **fields)


def make_sample(run, *, step=1, task="doc_general_qa", stage=0, verdict="YES", majority="1", rule_score=1.0,
                votes=None, disagreement=False, split_votes=False, response="The answer is Lisbon.", extra=None,
                question="Which city hosts the mill?", reference="Lisbon", **fields) -> Sample:
    seq = next(_seq)
    return Sample.objects.create(
        run=run, seq=seq, index=0, step=step, task=task, question=question, reference=reference, response=response,
        verdict=verdict, majority=majority, rule_score=rule_score, votes=votes if votes is not None else [1, 1, 1],
        disagreement=disagreement, split_votes=split_votes,
        extra={"curriculum_stage": stage, **(extra or {})}, **fields,
    )


def queue_item(run, *, verifier_yes=True, needed=1, step=1, task="doc_general_qa", stage=0, reason="random",
               priority=0, **sample_fields) -> ReviewItem:
    sample = make_sample(run, step=step, task=task, stage=stage, verdict="YES" if verifier_yes else "NO",
                         majority="1" if verifier_yes else "0", **sample_fields)
    return ReviewItem.objects.create(sample=sample, run=run, team=run.team, task=task, stage=stage, step=step,
                                     verifier_yes=verifier_yes, needed_labels=needed, reason=reason, priority=priority)


@pytest.fixture
def run(people):
    return make_run(people.team)


@pytest.fixture
def other_run(people):
    return make_run(people.other_team, name="other run")
