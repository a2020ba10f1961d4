"""RunConsumer at ws/runs/<id>/: authentication in connect, team access, the run's group, backfill."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from webapp.runs.models import Run, RunEvent
from webapp.runs.routing import websocket_urlpatterns
from workers.relay import EventRelay


def communicator(run_id, user, query=""):
    app = URLRouter(websocket_urlpatterns)
    comm = WebsocketCommunicator(app, f"/ws/runs/{run_id}/{query}")
    comm.scope["user"] = user
    return comm


pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_closes_4401_for_anonymous_users(run):
    connected, code = await communicator(run.pk, AnonymousUser()).connect()

    assert (connected, code) == (False, 4401)


@pytest.mark.parametrize("who", ["outsider", "annotator"])
async def test_it_closes_4403_for_users_who_may_not_see_the_run(run, who, request):
    user = await sync_to_async(request.getfixturevalue)(who)

    connected, code = await communicator(run.pk, user).connect()

    assert (connected, code) == (False, 4403)


async def test_it_closes_4403_for_a_missing_run(owner):
    connected, code = await communicator(999, owner).connect()

    assert (connected, code) == (False, 4403)


async def test_it_sends_the_state_then_relayed_events_and_states(run, owner):
    comm = communicator(run.pk, owner)
    connected, _ = await comm.connect()
    assert connected
    first = await comm.receive_json_from()
    assert first["kind"] == "state" and first["state"] == "QUEUED"

    await comm.send_json_to({"ignored": True})  # the page only listens
    await database_sync_to_async(Run.objects.filter(pk=run.pk).update)(state=Run.State.RUNNING, attempt=1)
    await database_sync_to_async(EventRelay.publish_state)(run.pk)
    state = await comm.receive_json_from(timeout=5)
    assert (state["kind"], state["state"], state["attempt"]) == ("state", "RUNNING", 1)

    run.path.mkdir(parents=True)
    (run.path / "events.jsonl").write_text('{"v":1,"seq":0,"type":"metrics","step":1,"attempt":1,"time":1.0,"payload":{"loss":0.5}}\n')
    relay = await database_sync_to_async(EventRelay)(run.pk, run.path / "events.jsonl", attempt=1)
    await database_sync_to_async(relay.poll)()
    message = await comm.receive_json_from(timeout=5)
    assert message == {"kind": "events", "events": [
        {"seq": 0, "attempt": 1, "step": 1, "type": "metrics", "time": 1.0, "payload": {"loss": 0.5}, "superseded": False}]}

    # Work inside the next step: the latest progress per phase, outside the seq stream.
    with open(run.path / "events.jsonl", "a") as f:
        f.write('{"v":2,"seq":1,"type":"progress","step":2,"attempt":1,"time":2.0,"payload":'
                '{"phase":"responder","done":3,"total":8,"unit":"sequences","eta_s":5.0,"state":"running"}}\n')
    await database_sync_to_async(relay.poll)()
    message = await comm.receive_json_from(timeout=5)
    assert message["kind"] == "progress" and message["progress"]["responder"]["done"] == 3
    assert message["progress"]["responder"]["step"] == 2
    await comm.disconnect()


async def test_it_backfills_what_came_after_a_seq(run, admin):
    await database_sync_to_async(RunEvent.objects.bulk_create)(
        [RunEvent(run=run, seq=i, type="log", payload={"message": str(i)}) for i in range(4)])
    comm = communicator(run.pk, admin, "?after=1")
    connected, _ = await comm.connect()
    assert connected

    backfill = await comm.receive_json_from()

    assert backfill["kind"] == "events" and backfill["backfill"] is True and backfill["more"] is False
    assert [e["seq"] for e in backfill["events"]] == [2, 3]
    assert (await comm.receive_json_from())["kind"] == "state"
    await comm.disconnect()


async def test_it_is_routed_by_the_project(run, owner):
    from webapp.routing import websocket_urlpatterns as project_routes

    assert any("ws/runs/<int:run_id>/" in str(p.pattern) for p in project_routes)


async def test_an_open_page_closes_when_its_member_is_removed_from_the_team(run, owner, teammate):
    from webapp.accounts.models import Membership

    removed, kept = communicator(run.pk, owner), communicator(run.pk, teammate)
    for comm in (removed, kept):
        assert (await comm.connect())[0]
        assert (await comm.receive_json_from())["kind"] == "state"

    await database_sync_to_async(Membership.objects.filter(user=owner).delete)()

    closing = await removed.receive_json_from(timeout=5)
    assert closing == {"kind": "closed", "reason": "Your access to this run was removed."}
    assert (await removed.receive_output(timeout=5))["type"] == "websocket.close"
    assert await kept.receive_nothing(timeout=0.5)  # the teammate's access did not change
    await kept.disconnect()


async def test_an_open_page_closes_when_its_member_becomes_an_annotator(run, teammate):
    from webapp.accounts import services as accounts
    from webapp.accounts.models import Membership

    comm = communicator(run.pk, teammate)
    assert (await comm.connect())[0]
    await comm.receive_json_from()

    membership = await database_sync_to_async(Membership.objects.get)(user=teammate)
    await database_sync_to_async(accounts.set_role)(membership, Membership.Role.ANNOTATOR)  # as the team page does

    assert (await comm.receive_json_from(timeout=5))["kind"] == "closed"
    await comm.disconnect()
