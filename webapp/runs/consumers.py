"""The run page's websocket: ws/runs/<id>/. It joins the run's group `run-<id>` and forwards what
the relay (workers/relay.py) sends there; `?after=<seq>` first sends the stored events after seq."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.accounts.access import role_in
from webapp.runs import services
from webapp.runs.live import group_name, user_group_name
from webapp.runs.models import Run

BACKFILL_LIMIT = 1000  # more than this: the page fetches the rest from /runs/<id>/events


def _fresh_user(user_id: int):
    """The user as the database has them now (the socket's scope holds them as they were)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


class RunConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    user_group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not await database_sync_to_async(self._may_see)(user, run_id):
            await self.close(code=4403)
            return
        self.run_id = run_id
        self.group = group_name(run_id)
        # Join first, then backfill: nothing sent in between is lost (the page drops seqs it has).
        await self.channel_layer.group_add(self.group, self.channel_name)
        # Told when this user's access changes (live.access_changed): a removed member's page closes.
        self.user = user
        self.user_group = user_group_name(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()
        after = self._after()
        if after is not None:
            events = await database_sync_to_async(services.events_after)(Run(pk=run_id), after, BACKFILL_LIMIT + 1)
            await self.send_json({"kind": "events", "backfill": True, "events": events[:BACKFILL_LIMIT],
                                  "more": len(events) > BACKFILL_LIMIT})
        state = await database_sync_to_async(self._state)(run_id)
        if state:
            await self.send_json({"kind": "state", **state})

    @staticmethod
    def _may_see(user, run_id: int) -> bool:
        run = Run.objects.select_related("team").filter(pk=run_id).first()
        return run is not None and role_in(user, run.team) in ("admin", "member")

    @staticmethod
    def _state(run_id: int) -> dict | None:
        run = Run.objects.filter(pk=run_id).first()
        return run.state_message() if run else None

    def _after(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            return int(query["after"][0])
        except (KeyError, ValueError, IndexError):
            return None

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.user_group:
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def access_changed(self, message):
        user = await database_sync_to_async(_fresh_user)(self.user.pk)
        if user is None or not await database_sync_to_async(self._may_see)(user, self.run_id):
            await self.send_json({"kind": "closed", "reason": "Your access to this run was removed."})
            await self.close(code=4403)

    async def receive_json(self, content, **kwargs):
        pass  # the page only listens; controls go through HTTP (CSRF, messages)

    async def run_events(self, message):
        await self.send_json({"kind": "events", "events": message["events"]})

    async def run_progress(self, message):
        await self.send_json({"kind": "progress", **{k: v for k, v in message.items() if k not in ("type", "run")}})

    async def run_state(self, message):
        await self.send_json({"kind": "state", **{k: v for k, v in message.items() if k not in ("type", "run")}})
