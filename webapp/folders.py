"""Folders named after a database row (`run-<id>`, `corpora/<id>`, `evalsets/<id>`): the one rule
for claiming one.

A new row's folder must start empty. One already there under the new id belongs to a row that no
longer exists: the database was reset or restored while the files were kept, or (SQLite reuses the
highest id once its row is gone) a row was deleted without its folder. Reusing it would mix another
row's files into the new one (a corpus ingesting stale uploads, a run resuming another run's
checkpoint; writing a file of the same name fails outright), so it is moved aside whole,
`<name>.stale-<time>`, nothing deleted, and the move logged for an admin to look at.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.utils import timezone

log = logging.getLogger(__name__)


def claim_new_folder(folder: Path, owner: str) -> Path:
    """`folder`, empty (not created): whatever was there is moved aside and logged. `owner` names
    the new row in the log line ("run 7", "corpus 3")."""
    if folder.exists() or folder.is_symlink():
        now = timezone.now()
        aside = folder.with_name(f"{folder.name}.stale-{now:%Y%m%d-%H%M%S-%f}")
        folder.rename(aside)
        log.warning("%s: %s already existed (a row that no longer exists); moved it to %s", owner, folder, aside)
    return folder
