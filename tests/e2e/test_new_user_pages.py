"""Pages that lead a new user, in Chromium on pytest-django's live server (no worker needed): the
home page's first step, the run form's collapsed sections and error summary, no page wider than
the window at 1,400 and 390 px, a confirmation before a drain, an annotator's home, the styled 404."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in
from webapp.accounts.models import Membership, Team
from webapp.bootstrap import SAMPLE_CORPUS
from webapp.fleet.models import Worker
from webapp.runs.models import ModelEntry, Run

from tests.webapp.runs.factories import make_corpus, make_run

pytestmark = pytest.mark.e2e
PASSWORD = "a-long-pass-phrase"


@pytest.fixture
def world(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User = get_user_model()
    team = Team.objects.create(name="Lab", slug="lab")
    owner = User.objects.create_user("olga", password=PASSWORD)
    annie = User.objects.create_user("annie", password=PASSWORD)
    User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    Membership.objects.create(user=owner, team=team, role=Membership.Role.MEMBER)
    Membership.objects.create(user=annie, team=team, role=Membership.Role.ANNOTATOR)
    ModelEntry.objects.create(name=settings.DEFAULT_MODEL_NAME, path="/models/tiny", max_positions=8192)
    corpus = make_corpus(team, name=SAMPLE_CORPUS)
    return team, corpus


def no_wider_than_the_window(page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url}: page {width[0]} px wide in a {width[1]} px window"


def test_a_member_goes_from_home_to_a_guided_run_form(live_server, world, page, screenshots):
    from playwright.sync_api import expect

    from webapp.fleet.models import Gpu, Worker

    _team, corpus = world
    node = Worker.objects.create(hostname="gpu@node", queues=["gpu.8"], state=Worker.State.ONLINE)  # 8 GPUs by NVML
    Gpu.objects.bulk_create(Gpu(worker=node, index=i) for i in range(8))
    log_in(page, live_server.url, "olga", PASSWORD)
    expect(page.locator("#next-steps")).to_be_visible()
    expect(page.locator("header nav a[aria-current=page]")).to_have_count(0)  # home: the brand is current
    page.screenshot(path=str(screenshots / "home-next-steps.png"), full_page=True)
    page.click("#start-demo-run")
    page.wait_for_url("**/runs/new?preset=cpu-demo&corpus=*")
    expect(page.locator("select[name=corpus]")).to_have_value(str(corpus.pk))
    assert page.locator("details.section[open]").count() == 0
    expect(page.locator("input[name=optim__lr]")).to_be_hidden()  # collapsed

    page.fill("input[name=name]", "guided")
    page.fill("input[name=selfplay__group_size]", "1")
    page.click("button:has-text('Launch run')")
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    page.screenshot(path=str(screenshots / "run-form-errors.png"))
    summary.locator("a").first.click()
    expect(page.locator("#id_selfplay__group_size")).to_be_focused()

    page.select_option("select[name=preset]", "paper-7b")
    expect(page.locator("select[name=queue]")).to_have_value("gpu.8")
    expect(page.locator("#queue-note")).to_contain_text("8 CUDA GPU(s): gpu.8 has an online worker with 8")


@pytest.mark.parametrize("width", [1400, 390])
def test_no_page_is_wider_than_the_window(live_server, world, chromium, screenshots, width, settings, tmp_path):
    team, corpus = world
    # A run page with what once widened it: the log's long command line.
    settings.RUNS_ROOT = tmp_path / "runs"
    run = make_run(team, corpus, ModelEntry.objects.get(), state=Run.State.CANCELLED)
    (run.path / "logs").mkdir(parents=True)
    (run.path / "logs" / "attempt-1.log").write_text("$ python -m spell train " + " ".join(f"--set knob.{i}=value" for i in range(80)) + "\n")
    Run.objects.filter(pk=run.pk).update(attempt=1)
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        log_in(page, live_server.url, "root", PASSWORD)
        for path in ("/", "/runs/new", f"/corpora/{corpus.pk}/", "/corpora/", "/runs/", f"/runs/{run.pk}/", "/review/",
                     "/fleet/", "/runs/999999/"):
            page.goto(live_server.url + path)
            no_wider_than_the_window(page)
        if width == 390:
            page.goto(live_server.url + "/")
            page.screenshot(path=str(screenshots / "home-390.png"), full_page=True)
    finally:
        context.close()


def test_a_drain_asks_first(live_server, world, page):
    from playwright.sync_api import expect

    worker = Worker.objects.create(hostname="gpu1@node", queues=["gpu.8"], state=Worker.State.ONLINE)
    log_in(page, live_server.url, "root", PASSWORD)
    page.goto(live_server.url + "/fleet/")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click(f"#worker-{worker.pk} button:has-text('Drain')")
    expect(page.locator(f"#worker-{worker.pk}")).to_be_visible()
    assert asked and asked[0].startswith("Drain gpu1@node?")
    worker.refresh_from_db()
    assert worker.state == Worker.State.ONLINE  # dismissed: nothing happened


def test_an_annotators_home_is_her_queue_and_a_missing_run_is_the_styled_404(live_server, world, page, screenshots):
    from playwright.sync_api import expect

    log_in(page, live_server.url, "annie", PASSWORD)
    expect(page.locator("h1")).to_have_text("Your review queue")
    expect(page.locator("text=Upload")).to_have_count(0)
    expect(page.locator("header nav a:has-text('Runs')")).to_have_count(0)
    response = page.goto(live_server.url + "/runs/999999/")
    assert response.status == 404
    expect(page.locator("#not-found h1")).to_have_text("Nothing here")
    expect(page.locator("header nav")).to_be_visible()
    page.screenshot(path=str(screenshots / "not-found.png"))
