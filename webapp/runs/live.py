"""A run page's live edge: one channel-layer group per run. The web app (after a control) and the
workers (the relay, after a claim or an attempt's end) both publish through these functions, so
the group's name and the state message live once, on the web app's side of the dependency."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def group_name(run_id: int) -> str:
    return f"run-{run_id}"


def _send(layer, group: str, message: dict[str, Any]) -> None:
    """layer.group_send from sync code; from a thread that runs an event loop itself (a sync caller
    inside async code, e.g. a browser test's driver), through a helper thread of its own."""
    import asyncio
    import threading

    from asgiref.sync import async_to_sync

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(layer.group_send)(group, message)
        return
    failure: list[BaseException] = []

    def send() -> None:
        try:
            async_to_sync(layer.group_send)(group, message)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the caller's thread
            failure.append(exc)

    helper = threading.Thread(target=send, name=f"group-send-{group}", daemon=True)
    helper.start()
    helper.join(timeout=10)
    if failure:
        raise failure[0]


def group_send(layer, run_id: int, message: dict[str, Any]) -> None:
    try:
        _send(layer, group_name(run_id), message)
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


# --- access changes: open run pages re-check who is watching ------------------------------------------
def user_group_name(user_id: int) -> str:
    return f"user-{user_id}"


def access_changed(user_id: int, channel_layer: Any = None) -> None:
    """A user's memberships or admin rights changed: each of their open run sockets checks again
    whether they may still see its run, and closes when not (RunConsumer.access_changed)."""
    if channel_layer is None:
        from channels.layers import get_channel_layer

        channel_layer = get_channel_layer()
    try:
        _send(channel_layer, user_group_name(user_id), {"type": "access.changed"})
    except Exception:  # noqa: BLE001 - the next connect checks access anyway
        log.exception("user %s: could not tell their open run pages that their access changed", user_id)


def _on_access_change(sender, instance, **kwargs) -> None:
    from django.db import transaction

    user_id = getattr(instance, "user_id", None) or getattr(instance, "pk", None)
    if user_id:
        transaction.on_commit(lambda: access_changed(user_id))


def connect_access_signals() -> None:
    """Membership saved or deleted (a role changed, a member removed, a team deleted) and users saved
    (admin rights, deactivation), from any path: our pages, the Django admin, the shell."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save

    from webapp.accounts.models import Membership

    for signal in (post_save, post_delete):
        signal.connect(_on_access_change, sender=Membership, dispatch_uid=f"run-access-membership-{signal}")
    post_save.connect(_on_access_change, sender=get_user_model(), dispatch_uid="run-access-user")
