"""First-start content for the one-machine default: a team, the default model, the sample corpus and
the held-out evaluation sets that come with it."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from webapp.accounts.models import Membership, Team
from webapp.corpora.models import Corpus, EvalSet
from webapp.runs.models import ModelEntry

DEFAULT_TEAM = "Default team"
SAMPLE_CORPUS = "Sample corpus"
# samples/eval/ files loaded as evaluation sets (scripts/make_heldout_sets.py): name -> file name
SAMPLE_EVAL_FILES = {"heldout-towns-mc": "heldout_towns_mc.json", "heldout-towns-qa": "heldout_towns_qa.jsonl"}
SAMPLE_EVAL_SETS = tuple(SAMPLE_EVAL_FILES)


def ensure_default_team() -> Team:
    team, _ = Team.objects.get_or_create(slug="default", defaults={"name": DEFAULT_TEAM})
    for admin in get_user_model().objects.filter(is_superuser=True):
        Membership.objects.get_or_create(user=admin, team=team, defaults={"role": Membership.Role.MEMBER})
    return team


def register_default_model(name: str, path: Path) -> ModelEntry:
    max_positions = None
    config = Path(path) / "config.json"
    if config.exists():
        max_positions = json.loads(config.read_text()).get("max_position_embeddings")
    entry, _ = ModelEntry.objects.update_or_create(
        name=name, defaults={"path": str(path), "max_positions": max_positions}
    )
    return entry


def ensure_sample_corpus(team: Team, folder: Path) -> Corpus | None:
    """Load the bundled sample corpus once (through the same ingest path as uploads)."""
    existing = Corpus.objects.filter(team=team, name=SAMPLE_CORPUS).first()
    if existing is not None or not folder.is_dir():
        return existing
    from webapp.corpora.services import create_corpus_from_paths

    with transaction.atomic():
        return create_corpus_from_paths(team, SAMPLE_CORPUS, [folder], user=None)


def ensure_sample_eval_sets(team: Team, folder: Path) -> list[EvalSet]:
    """Load the bundled held-out sets once each (through the same path as uploads)."""
    from django.core.files import File

    from webapp.corpora.services import create_eval_set_upload

    out = []
    for name, filename in SAMPLE_EVAL_FILES.items():
        existing = EvalSet.objects.filter(team=team, name=name).first()
        path = Path(folder) / filename
        if existing is None and path.is_file():
            with open(path, "rb") as handle, transaction.atomic():
                existing = create_eval_set_upload(team, name, File(handle, name=filename))
        if existing is not None:
            out.append(existing)
    return out
