"""An annotator labels a review queue in Chromium with the keyboard alone: 1/2/3, Enter, J, K."""

from __future__ import annotations

import os
import re

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM runs beside Playwright's loop

from django.conf import settings  # noqa: E402

from webapp.accounts.models import Membership, Team  # noqa: E402
from webapp.audits.models import Label, ReviewItem, ReviewLog  # noqa: E402
from webapp.runs.models import Run, Sample  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PASSWORD = "pw-for-tests-1"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Chromium at /usr/bin/chromium"),
]


@pytest.fixture
def queue(transactional_db, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    team = Team.objects.create(name="Team A", slug="team-a")
    user = django_user_model.objects.create_user("annie", password=PASSWORD)
    Membership.objects.create(user=user, team=team, role=Membership.Role.ANNOTATOR)
    run = Run.objects.create(team=team, name="keyboard run", config={}, state=Run.State.RUNNING)
    items = []
    for i, (verdict, question) in enumerate([("YES", "Which river feeds the mill?"),
                                             ("NO", "In which year was the charter signed?"),
                                             ("YES", "How many ferries crossed in winter?")]):
        sample = Sample.objects.create(
            run=run, seq=i, step=i + 1, task="doc_general_qa", question=question, reference=f"reference {i}",
            response=f"Reasoning... The correct answer is answer {i}.", verdict=verdict,
            majority="1" if verdict == "YES" else "0", rule_score=0.0, votes=[1, 1, 0] if verdict == "YES" else [0, 0, 0],
            extra={"curriculum_stage": 0, "excerpts": [{"doc_id": f"d{i}", "text": f"Excerpt of document {i}."}]})
        items.append(ReviewItem.objects.create(sample=sample, run=run, team=team, task=sample.task, stage=0,
                                               step=sample.step, verifier_yes=verdict == "YES"))
    return run, items


def test_it_labels_a_queue_with_the_keyboard_alone(live_server, queue):
    from playwright.sync_api import expect, sync_playwright

    run, items = queue
    keys = ["2", "1", "3"]
    shots = settings.VAR_DIR / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(20000)
            page.goto(f"{live_server.url}/login/?next=/review/{run.pk}/next")
            page.fill("input[name=username]", "annie")
            page.fill("input[name=password]", PASSWORD)
            page.keyboard.press("Enter")  # submits the login form
            for n, (key, item) in enumerate(zip(keys, items)):
                expect(page.locator("#review-item")).to_have_attribute("data-item", str(item.pk))
                # The page's keys work once its script has run (the DOM can be there before it).
                expect(page.locator("#review-item")).to_have_attribute("data-keyboard", "on")
                expect(page.locator("#verdict")).to_have_count(0)  # blind before the label
                page.keyboard.press("Enter")  # nothing chosen yet: a hint, no submission
                expect(page.locator("#label-hint")).to_have_text("Choose 1, 2 or 3 first.")
                page.keyboard.press(key)
                expect(page.locator(f".choices label[data-key='{key}']")).to_have_class(re.compile("selected"))
                # Shift+Enter labels and stays (plain Enter labels and opens the next item).
                page.keyboard.press("Shift+Enter")
                expect(page.locator("#verdict")).to_be_visible()
                expect(page.locator("#review-item")).to_have_attribute("data-keyboard", "on")
                expect(page.locator("#my-label")).to_have_text(["Not equivalent", "Equivalent", "Unsure"][n])
                if n == 0:
                    page.screenshot(path=str(shots / "review.png"), full_page=True)
                page.keyboard.press("j")
            expect(page.locator("#review-empty")).to_have_attribute("data-keyboard", "on")
            page.keyboard.press("k")  # back to the last labelled item, verdict shown
            expect(page.locator("#review-item")).to_have_attribute("data-item", str(items[-1].pk))
            expect(page.locator("#review-item")).to_have_attribute("data-keyboard", "on")
            expect(page.locator("#verdict")).to_be_visible()
            page.keyboard.press("k")
            expect(page.locator("#review-item")).to_have_attribute("data-item", str(items[-2].pk))
            expect(page.locator("#review-item")).to_have_attribute("data-keyboard", "on")
            page.keyboard.press("n")  # a note, then Enter changes the label and keeps the note
            page.keyboard.type("checked the charter")
            page.keyboard.press("Escape")
            page.keyboard.press("2")
            page.keyboard.press("Enter")
            expect(page.locator("#my-label")).to_have_text("Not equivalent")
        finally:
            browser.close()

    labels = {lab.item_id: lab for lab in Label.objects.filter(annotator__username="annie")}
    assert [labels[i.pk].label for i in items] == ["not_equivalent", "not_equivalent", "unsure"]
    assert labels[items[1].pk].note == "checked the charter"
    assert [e.action for e in ReviewLog.objects.order_by("id")] == ["label", "label", "label", "relabel"]
    assert ReviewLog.objects.order_by("-id").first().before == {"label": "equivalent", "note": ""}
    assert (shots / "review.png").stat().st_size > 0
