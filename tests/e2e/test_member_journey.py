"""A team member's whole journey in a real browser, against a live Daphne server, a real Celery worker
and the real training CLI on the tiny random model: upload the sample corpus, watch it ingest, launch
a cpu-demo run, see a chart point and a triple arrive live over the websocket, pause, resume,
compare with another run, and cancel."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in
from tests.support import REPO
from webapp.accounts.models import Membership, Team
from webapp.runs.models import ModelEntry, Run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Small knobs so a step of the tiny model takes seconds: the form is filled as a person would.
FAST_KNOBS = {
    "run__steps": "50",
    "warmup__examples_per_role": "2",  # the warm-up as small as the rest of the run
    "warmup__verifier_examples": "2",
    "tasks__docs_per_question": "2",
    "tasks__mix": "doc_general_qa=1.0, doc_mc=1.0, docmath_qa=0.0",
    "selfplay__group_size": "2",
    "selfplay__verifier_samples": "2",
    "selfplay__batch_groups": "1",
    "sampling__max_response_tokens": "16",
    "length_curriculum__stages": "1024, 2048",
    "eval__every_steps": "0",
    "checkpoint__every_steps": "1",
}


@pytest.fixture
def member(transactional_db):
    from spell.models import prepare_model

    team = Team.objects.create(name="Lab", slug="lab", concurrent_run_quota=1)
    user = get_user_model().objects.create_user("mira", password="a-long-pass-phrase")
    Membership.objects.create(user=user, team=team, role=Membership.Role.MEMBER)
    ModelEntry.objects.create(name="tiny-random", path=str(prepare_model("tiny-random")), max_positions=8192)
    return user


def run_state(page):
    return page.locator("#run-state").inner_text().strip()


def wait_for_state(page, label, timeout=30_000):
    """Wait until the live page shows the run in `label`, then load the page afresh. On a state
    change the page reloads itself 1.5 s later (run.js); a click or a screenshot that lands in
    that reload is lost, so the test takes the reload on its own terms."""
    page.wait_for_function(f"document.getElementById('run-state').textContent.trim() === '{label}'", timeout=timeout)
    page.goto(page.url)
    assert run_state(page) == label


# Every text the run page's progress line shows, with the finished-step count beside it, kept in
# sessionStorage so that it survives the page's own reloads (it reloads on a state change).
RECORD_PROGRESS = """
(() => {
  const watch = () => {
    const line = document.getElementById("run-progress");
    if (!line) return;
    const seen = JSON.parse(sessionStorage.getItem("progress-lines") || "[]");
    const note = () => {
      const text = line.hidden ? "" : line.textContent.trim();
      const done = (document.getElementById("run-step") || {}).textContent;
      if (text && (!seen.length || seen[seen.length - 1][0] !== text)) {
        seen.push([text, done]);
        sessionStorage.setItem("progress-lines", JSON.stringify(seen));
      }
    };
    note();
    new MutationObserver(note).observe(line, {childList: true, characterData: true, subtree: true, attributes: true});
  };
  document.addEventListener("DOMContentLoaded", watch);
})();
"""


def test_a_member_uploads_launches_watches_pauses_resumes_compares_and_cancels(live_stack, member, page, screenshots):
    server, _worker = live_stack
    questions = []  # what the page asked before acting (cancel asks first)
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.add_init_script(RECORD_PROGRESS)
    log_in(page, server.url, "mira", "a-long-pass-phrase")

    # Upload the sample corpus and wait for the ingest to finish.
    page.goto(server.url + "/corpora/upload/")
    page.fill("input[name=name]", "Sample corpus")
    page.set_input_files("input[name=files]", sorted(str(p) for p in (REPO / "samples" / "corpus").iterdir() if p.suffix in (".jsonl", ".md")))
    page.click("button:has-text('Upload and ingest')")
    page.wait_for_url(re.compile(r"/corpora/\d+/"))
    page.wait_for_function("document.getElementById('corpus-status').textContent.trim() === 'Ready'", timeout=120_000)
    page.screenshot(path=str(screenshots / "member-corpus.png"), full_page=True)

    # Launch a cpu-demo run on the tiny model.
    page.goto(server.url + "/runs/new?preset=cpu-demo")
    page.fill("input[name=name]", "journey")
    page.select_option("select[name=model_entry]", label="tiny-random")
    page.click("#open-all-sections")  # the form opens with the essentials only
    for name, value in FAST_KNOBS.items():
        page.fill(f"[name={name}]", value)
    page.uncheck("input[name=eval__at_start]")
    page.click("button:has-text('Launch run')")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run = Run.objects.get(name="journey")

    # A chart point and a triple arrive live (the page is not reloaded).
    page.wait_for_selector("#dash-charts .js-plotly-plot", timeout=240_000)
    page.wait_for_selector("#triples-table tbody tr td", timeout=240_000)
    assert run_state(page) == "Running"

    # Inside the first step the progress line moved on (phase, n / total) before the step was done.
    page.wait_for_function("document.getElementById('run-step').textContent.trim() !== '0'", timeout=240_000)
    lines = page.evaluate("JSON.parse(sessionStorage.getItem('progress-lines') || '[]')")
    first_step = [text for text, done in lines if done.strip() == "0" and text.startswith("Step 1 in progress: ")]
    assert len(first_step) >= 2, lines
    assert any(re.search(r": (questioner|responder|verifier) \d+/\d+ sequences", text) for text in first_step), lines
    # After one step a chart shows its point as a marker, and the header shows the curriculum stage.
    page.wait_for_function("document.querySelectorAll('#dash-charts .dash-chart:not([hidden]) .point').length > 0",
                           timeout=60_000)
    badge = page.locator("#run-stage")
    assert badge.is_visible() and re.search(r"stage \d+ / \d+", badge.inner_text()), badge.inner_text()
    page.screenshot(path=str(screenshots / "member-run-live.png"), full_page=True)

    # Pause: the process checkpoints and exits; resume continues from that checkpoint.
    page.click("button:has-text('Pause')")
    wait_for_state(page, "Paused", timeout=240_000)
    page.click("button:has-text('Resume')")
    wait_for_state(page, "Running", timeout=120_000)
    run.refresh_from_db()
    assert run.attempt == 2

    # Clone it (the clone waits in the queue: the team may run one run at a time), then compare.
    page.click("a:has-text('Clone')")
    page.wait_for_url(re.compile(r"/runs/new\?clone="))
    page.fill("input[name=name]", "journey copy")
    page.click("button:has-text('Launch run')")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    copy = Run.objects.get(name="journey copy")
    assert copy.config == run.config
    page.goto(server.url + f"/runs/compare?ids={run.pk},{copy.pk}")
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    assert page.locator("text=journey copy").count() >= 1
    page.screenshot(path=str(screenshots / "member-compare.png"), full_page=True)
    page.goto(server.url + f"/runs/{copy.pk}/")
    page.click("button:has-text('Cancel')")
    wait_for_state(page, "Cancelled")
    assert any(q.startswith("Cancel run “journey copy”?") and "cannot be resumed" in q for q in questions), questions

    # Cancel from the run page.
    page.goto(server.url + f"/runs/{run.pk}/")
    page.click("button:has-text('Cancel')")
    wait_for_state(page, "Cancelled", timeout=120_000)
    page.screenshot(path=str(screenshots / "member-run-cancelled.png"), full_page=True)
    run.refresh_from_db()
    assert run.state == Run.State.CANCELLED
    seqs = list(run.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(len(seqs)))  # nothing lost, nothing twice, across two attempts
