"""The authorization matrix: EVERY URL pattern of the project (found by walking the resolver, so a new
page is covered the moment it exists) and every websocket route, requested as each role, with the
status expected in one table. A route missing from the table fails; so does a table row for a route
that no longer exists.

Roles: anonymous, admin, owner (member of team A), outsider (member of team B), annotator (team A).
Every id in a URL names an object of team A.

Set AUTHZ_DISCOVER=1 to print the statuses seen (to fill the table for a new route; then check them).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests.support import fake_checkpoint
from tests.webapp.accounts.roles import make_people

ROLES = ("anonymous", "admin", "owner", "outsider", "annotator")
DISCOVER = os.environ.get("AUTHZ_DISCOVER") == "1"

# --- every route ------------------------------------------------------------------------------------


def walk(patterns, prefix="", namespace=""):
    """(key, route template) for every URL pattern; key = namespaced name, or the template if unnamed."""
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            template = prefix + str(p.pattern)
            yield (f"{namespace}{p.name}" if p.name else f"{namespace}<{template}>"), template


ROUTES = dict(walk(get_resolver().url_patterns))
APP_ROUTES = {k: v for k, v in ROUTES.items() if not k.startswith("admin:")}
ADMIN_ROUTES = {k: v for k, v in ROUTES.items() if k.startswith("admin:")}

# --- the table: route -> method -> expected status per role, in ROLES order ----------------------------
#        anonymous admin owner outsider annotator
LOGIN = 302  # anonymous on a page: redirect to the login page
S = lambda *codes: tuple(codes)  # noqa: E731

EXPECTED: dict[str, dict[str, tuple]] = {
    # project
    "home": {"GET": S(302, 200, 200, 200, 200)},
    "healthz": {"GET": S(200, 200, 200, 200, 200)},
    "login": {"GET": S(200, 200, 200, 200, 200)},
    "logout": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 302, 302, 302)},
    # accounts
    "accounts:login": {"GET": S(200, 200, 200, 200, 200), "POST": S(200, 200, 200, 200, 200)},
    "accounts:password_reset": {"GET": S(200, 200, 200, 200, 200), "POST": S(200, 200, 200, 200, 200)},
    "accounts:password_reset_done": {"GET": S(200, 200, 200, 200, 200)},
    "accounts:password_reset_confirm": {"GET": S(302, 302, 302, 302, 302)},
    "accounts:password_reset_complete": {"GET": S(200, 200, 200, 200, 200)},
    "accounts:tokens": {"GET": S(302, 200, 200, 200, 200), "POST": S(302, 400, 400, 400, 400)},
    "accounts:revoke_token": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 404, 302, 404, 404)},
    "accounts:teams": {"GET": S(302, 200, 403, 403, 403), "POST": S(302, 400, 403, 403, 403)},
    "accounts:team": {"GET": S(302, 200, 403, 403, 403)},
    "accounts:invite": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "accounts:add_member": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "accounts:set_quota": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "accounts:set_role": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "accounts:remove_member": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "accounts:revoke_invitation": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "accounts:accept_invitation": {"GET": S(200, 200, 200, 200, 200)},
    "accounts:users": {"GET": S(302, 200, 403, 403, 403)},
    "accounts:set_admin": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    # corpora: members of the team (annotators and other teams: 404, no leak)
    "corpora:index": {"GET": S(302, 200, 200, 200, 200), "POST": S(405, 405, 405, 405, 405)},
    "corpora:upload": {"GET": S(302, 200, 200, 200, 403), "POST": S(302, 400, 400, 400, 403)},  # annotators: 403, why
    "corpora:detail": {"GET": S(302, 200, 200, 404, 404), "POST": S(405, 405, 405, 405, 405)},
    "corpora:status": {"GET": S(302, 200, 200, 404, 404), "POST": S(405, 405, 405, 405, 405)},
    "corpora:cluster": {"GET": S(302, 200, 200, 404, 404), "POST": S(405, 405, 405, 405, 405)},
    "corpora:document": {"GET": S(302, 200, 200, 404, 404), "POST": S(405, 405, 405, 405, 405)},
    "corpora:delete": {"GET": S(302, 200, 200, 404, 404), "POST": S(302, 302, 302, 404, 404)},
    "corpora:evalset_upload": {"GET": S(302, 200, 200, 200, 403), "POST": S(302, 400, 400, 400, 403)},
    "corpora:evalset_detail": {"GET": S(302, 200, 200, 404, 404), "POST": S(405, 405, 405, 405, 405)},
    "corpora:evalset_status": {"GET": S(302, 200, 200, 404, 404), "POST": S(405, 405, 405, 405, 405)},
    "corpora:evalset_delete": {"GET": S(302, 200, 200, 404, 404), "POST": S(302, 302, 302, 404, 404)},
    # runs: members of the team; other teams 404 (no leak), the team's annotators 403
    "runs:list": {"GET": S(302, 200, 200, 200, 200), "POST": S(302, 405, 405, 405, 405)},
    "runs:new": {"GET": S(302, 200, 200, 200, 403), "POST": S(302, 200, 200, 200, 403)},
    "runs:api_runs": {"GET": S(401, 200, 200, 200, 200), "POST": S(401, 400, 400, 400, 400)},  # token or session
    "runs:detail": {"GET": S(302, 200, 200, 404, 403), "POST": S(302, 405, 405, 405, 405)},
    "runs:cancel": {"GET": S(302, 405, 405, 405, 405), "POST": S(302, 302, 302, 404, 403)},
    "runs:pause": {"GET": S(302, 405, 405, 405, 405), "POST": S(302, 302, 302, 404, 403)},
    "runs:resume": {"GET": S(302, 405, 405, 405, 405), "POST": S(302, 302, 302, 404, 403)},
    "runs:clone": {"GET": S(302, 302, 302, 404, 403), "POST": S(302, 405, 405, 405, 405)},
    "runs:delete": {"GET": S(302, 200, 200, 404, 403), "POST": S(302, 200, 200, 404, 403)},
    "runs:events": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},  # token or session
    "runs:samples": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},  # token or session
    "runs:metrics_csv": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},  # token or session
    "runs:metrics_json": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},  # token or session
    "runs:samples_jsonl": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},  # token or session
    "runs:log": {"GET": S(302, 200, 200, 404, 403), "POST": S(302, 405, 405, 405, 405)},
    "runs:checkpoint_download": {"GET": S(302, 200, 200, 404, 403), "POST": S(302, 405, 405, 405, 405)},
    "runs:checkpoint_register": {"GET": S(302, 405, 405, 405, 405), "POST": S(302, 302, 302, 404, 403)},
    # the dashboard: JSON for scripts too (token or session), pages for people
    "runs:series": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},
    "runs:alarms": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},
    "runs:triples": {"GET": S(401, 200, 200, 404, 403), "POST": S(401, 405, 405, 405, 405)},
    "runs:sample": {"GET": S(302, 200, 200, 404, 403), "POST": S(302, 405, 405, 405, 405)},
    "runs:sample_by_seq": {"GET": S(302, 302, 302, 404, 403), "POST": S(302, 405, 405, 405, 405)},
    "runs:compare": {"GET": S(302, 400, 400, 400, 400), "POST": S(302, 405, 405, 405, 405)},  # 400: no ids given
    # audits: the review queue (annotators and members of the team; export for members only)
    "audits:index": {"GET": S(302, 200, 200, 200, 200), "POST": S(302, 405, 405, 405, 405)},
    "audits:progress": {"GET": S(302, 200, 200, 200, 200), "POST": S(302, 405, 405, 405, 405)},
    "audits:log": {"GET": S(302, 200, 403, 403, 403), "POST": S(302, 405, 403, 403, 403)},
    "audits:next": {"GET": S(302, 302, 302, 404, 302), "POST": S(302, 405, 405, 405, 405)},
    "audits:item": {"GET": S(302, 200, 200, 404, 200), "POST": S(302, 405, 405, 405, 405)},
    "audits:submit": {"GET": S(302, 405, 405, 405, 405), "POST": S(302, 400, 400, 404, 400)},
    "audits:metrics": {"GET": S(401, 200, 200, 404, 200), "POST": S(405, 405, 405, 405, 405)},
    "audits:export": {"GET": S(401, 200, 200, 404, 403), "POST": S(405, 405, 405, 405, 405)},
    # fleet (admins only)
    "fleet:index": {"GET": S(302, 200, 403, 403, 403)},
    "fleet:workers_json": {"GET": S(401, 200, 403, 403, 403)},
    "fleet:drain": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "fleet:enable": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "fleet:add_queue": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "fleet:remove_queue": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "fleet:forget": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "fleet:cancel_run": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
    "fleet:requeue_run": {"GET": S(405, 405, 405, 405, 405), "POST": S(302, 302, 403, 403, 403)},
}

# The Django admin site: non-admins are sent to its login page; an admin gets the page (200), or a
# redirect where the page itself redirects (the object shortcut, the catch-all slash redirect).
ADMIN_SITE_OK_FOR_ADMIN = (200, 301, 302, 403, 404, 405)  # 403/404: a ModelAdmin refusing add/delete, no object


def admin_expected(key: str) -> tuple:
    """Non-admins: always the admin's login redirect. Admins: in, with these exact statuses where the
    page is fixed; elsewhere whatever the ModelAdmin says (never a 500)."""
    if key == "admin:login":
        return S(200, 302, 200, 200, 200)
    if key == "admin:logout":
        return S(302, 405, 302, 302, 302)
    fixed = {"admin:index": 200, "admin:app_list": 200, "admin:jsi18n": 200, "admin:password_change": 200,
             "admin:password_change_done": 200, "admin:accounts_team_changelist": 200,
             "admin:accounts_team_change": 200, "admin:auth_user_changelist": 200, "admin:autocomplete": 403}
    return S(302, fixed.get(key, ADMIN_SITE_OK_FOR_ADMIN), 302, 302, 302)


# --- filling URL parameters with team A's objects --------------------------------------------------------


class World:
    """Team A's objects, one of each, for the ids in URLs."""

    def __init__(self, tmp_path: Path):
        from webapp.accounts.models import ApiToken, Invitation
        from webapp.accounts.models import _hash as hash_key
        from webapp.corpora.models import Cluster, Corpus, Document, EvalSet
        from webapp.fleet.models import Worker
        from webapp.runs.models import Run

        self.people = p = make_people()
        self.corpus = Corpus.objects.create(team=p.team, name="A corpus", status=Corpus.Status.READY, created_by=p.owner)
        self.cluster = Cluster.objects.create(corpus=self.corpus, key="c1", label="c1", size=1)
        self.document = Document.objects.create(corpus=self.corpus, cluster=self.cluster, external_id="d1", text="Some text.")
        self.evalset = EvalSet.objects.create(team=p.team, name="A eval", status=EvalSet.Status.READY, created_by=p.owner)
        run_dir = tmp_path / "run"
        fake_checkpoint(run_dir, 1)
        self.run = Run.objects.create(team=p.team, name="A run", config={}, queue="cpu", state=Run.State.PAUSED,
                                      created_by=p.owner, run_dir=str(run_dir), queued_at=timezone.now())
        self.worker = Worker.objects.create(hostname="w1@matrix", queues=["cpu"], configured_queues=["cpu"],
                                            state=Worker.State.OFFLINE, last_heartbeat=timezone.now())
        self.token, _ = ApiToken.issue(p.owner, "owner's script")
        self.invitation_key = "matrix-invitation-key"
        self.invitation = Invitation.objects.create(
            email="new@example.com", team=p.team, role="member", key_hash=hash_key(self.invitation_key),
            invited_by=p.admin, expires_at=timezone.now() + timezone.timedelta(days=1),
        )
        self.membership = p.teammate.memberships.get(team=p.team)
        from webapp.audits.models import ReviewItem
        from webapp.runs.models import Sample

        self.sample = sample = Sample.objects.create(run=self.run, seq=0, step=1, task="qa", question="Q?", reference="A",
                                       response="A", verdict="yes", majority="yes")
        self.review_item = ReviewItem.objects.create(sample=sample, run=self.run, team=p.team, task="qa", verifier_yes=True)

    def kwargs(self, key: str, template: str) -> dict:
        ns = key.split(":")[0] if ":" in key else ""
        found = dict.fromkeys(re.findall(r"<(?:\w+:)?(\w+)>", template))  # also the admin's (?P<name>...)
        values: dict = {}
        for name in found:
            if ns == "runs":
                values[name] = {"pk": self.run.pk, "name": "step-000001", "sample_id": self.sample.pk,
                                "seq": self.sample.seq, "index": self.sample.index}[name]
            elif ns == "corpora":
                pk = self.evalset.pk if "evalset" in key else self.corpus.pk
                values[name] = {"pk": pk, "cluster_pk": self.cluster.pk, "doc_pk": self.document.pk}[name]
            elif ns == "audits":
                values[name] = {"pk": getattr(self.review_item, "pk", None), "run_id": self.run.pk}[name]
            elif ns == "fleet":
                values[name] = {"pk": self.worker.pk, "run_id": self.run.pk}[name]
            elif ns == "accounts":
                values[name] = {
                    "accounts:revoke_token": self.token.pk,
                    "accounts:team": self.people.team.pk, "accounts:invite": self.people.team.pk,
                    "accounts:add_member": self.people.team.pk, "accounts:set_quota": self.people.team.pk,
                    "accounts:set_role": self.membership.pk, "accounts:remove_member": self.membership.pk,
                    "accounts:revoke_invitation": self.invitation.pk, "accounts:set_admin": self.people.owner.pk,
                }.get(key) if name == "pk" else {
                    "key": self.invitation_key,
                    "uidb64": urlsafe_base64_encode(force_bytes(self.people.owner.pk)),
                    "token": default_token_generator.make_token(self.people.owner),
                }[name]
            elif ns == "admin":
                values[name] = self.admin_value(key, name)
            else:
                raise KeyError(f"no value for <{name}> in {key}")
            if values[name] is None:
                raise KeyError(f"no value for <{name}> in {key}")
        return values

    def admin_value(self, key: str, name: str):
        if name == "app_label":
            return "accounts"
        if name == "content_type_id":
            from django.contrib.contenttypes.models import ContentType

            return ContentType.objects.get_for_model(type(self.people.team)).pk
        if name == "object_id":
            match = re.match(r"admin:(\w+?)_(\w+)_(change|delete|history)$", key)
            if match:
                from django.apps import apps

                model = apps.get_model(match.group(1), match.group(2))
                obj = model.objects.order_by("pk").first()
                return obj.pk if obj else 1
            return self.people.team.pk
        if name == "url":
            return "accounts"
        return 1


def concrete(template: str, values: dict) -> str:
    """A path from a route template (path converters and the admin's regex groups)."""
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), template)
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), url)
    return "/" + url.replace("^", "").replace("$", "").replace("\\", "")


def client_for(role: str, world: World) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(getattr(world.people, role))
    return client


CASES = [
    (key, method)
    for key in sorted(ROUTES)
    for method in (EXPECTED.get(key) or ({"GET": None} if key.startswith("admin:") or not DISCOVER else {"GET": None, "POST": None}))
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RUNS_ROOT = tmp_path / "runs"


def test_every_route_has_an_expectation():
    missing = sorted(set(APP_ROUTES) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(APP_ROUTES))
    assert not missing, f"routes with no expected statuses in the matrix: {missing}"
    assert not stale, f"matrix rows for routes that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key,method", CASES)
def test_route(key, method, role, db, tmp_path):
    if key not in EXPECTED and not key.startswith("admin:") and not DISCOVER:
        pytest.fail(f"{key} has no expected statuses in the matrix")
    world = World(tmp_path)
    client = client_for(role, world)  # first: logging in changes what a password-reset token hashes
    url = concrete(ROUTES[key], world.kwargs(key, ROUTES[key]))
    response = getattr(client, method.lower())(url)
    if DISCOVER:
        print(f"\nAUTHZ {key} {method} {role} {url} -> {response.status_code}")
        return
    expected = (EXPECTED[key][method] if key in EXPECTED else admin_expected(key))[ROLES.index(role)]
    ok = response.status_code in expected if isinstance(expected, tuple) else response.status_code == expected
    assert ok, f"{method} {url} as {role}: {response.status_code}, expected {expected}"
    if key.startswith("admin:") and role != "admin" and key not in ("admin:login", "admin:logout") and response.status_code == 302:
        assert response["Location"].startswith("/admin/login/"), response["Location"]
    if key in EXPECTED and role == "anonymous" and response.status_code == 302 and method == "GET":
        assert response["Location"].startswith(("/login/", "/accounts/reset/")), response["Location"]


# --- websocket routes ----------------------------------------------------------------------------------
#                  anonymous admin owner outsider annotator: connected?
WS_EXPECTED = {
    "ws/runs/<int:run_id>/": S(False, True, True, False, False),
}


def ws_routes():
    from webapp.routing import websocket_urlpatterns

    return [str(p.pattern) for p in websocket_urlpatterns]


def test_every_websocket_route_has_an_expectation():
    assert sorted(ws_routes()) == sorted(WS_EXPECTED), "websocket routes and WS_EXPECTED differ"


@pytest.fixture
def ws_world(transactional_db, tmp_path, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return World(tmp_path)


def ws_headers(world: World, role: str, origin: str = "http://testserver") -> list:
    headers = [(b"origin", origin.encode())] if origin else []
    if role != "anonymous":
        client = Client()
        client.force_login(getattr(world.people, role))
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def ws_connects(path: str, headers: list) -> bool:
    from channels.testing import WebsocketCommunicator

    from webapp.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=headers)
    try:
        connected, _ = await communicator.connect(timeout=10)
    finally:
        await communicator.disconnect()
    return connected


def ws_path(template: str, world: World) -> str:
    return concrete(template, {"run_id": world.run.pk, "pk": world.run.pk})


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(WS_EXPECTED))
async def test_websocket_route(route, role, ws_world):
    headers = await sync_to_async(ws_headers)(ws_world, role)

    connected = await ws_connects(ws_path(route, ws_world), headers)

    assert connected is WS_EXPECTED[route][ROLES.index(role)], f"{route} as {role}"


@pytest.mark.parametrize("origin", ["http://evil.example", ""])
@pytest.mark.parametrize("route", sorted(WS_EXPECTED))
async def test_websocket_refuses_a_foreign_or_missing_origin(route, origin, ws_world):
    headers = await sync_to_async(ws_headers)(ws_world, "admin", origin=origin)

    assert await ws_connects(ws_path(route, ws_world), headers) is False
