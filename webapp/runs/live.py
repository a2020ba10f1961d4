"""A run page's live edge: one channel-layer group per run. The web app (after a control) and the
workers (the relay, after a claim or an attempt's end) both publish through these functions, so
the group's name and the state message live once, on the web app's side of the dependency."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def group_name(run_id: int) -> str:
    return f"run-{run_id}"


def group_send(layer, run_id: int, message: dict[str, Any]) -> None:
    from asgiref.sync import async_to_sync

    try:
        async_to_sync(layer.group_send)(group_name(run_id), message)
    except Exception:  # noqa: BLE001 - the database is the record; the live edge may drop a message
        log.exception("run %s: could not send to the channel layer", run_id)


def publish_state(run_id: int, channel_layer: Any = None) -> None:
    """Send the run's current state (after a claim, a control or the end of an attempt)."""
    from webapp.runs.models import Run

    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return
    if channel_layer is None:
        from channels.layers import get_channel_layer

        channel_layer = get_channel_layer()
    group_send(channel_layer, run_id, {"type": "run.state", "run": run_id, **run.state_message()})
