"""Pages that lead a new user: the home page's next steps by role, the styled 404 / 403 / 500 (in
DEBUG too), the favicon, the navigation's current page, and the shared confirmation script."""

from __future__ import annotations

import re

import pytest
from django.template import loader

from webapp.audits.models import ReviewItem
from webapp.bootstrap import SAMPLE_CORPUS
from webapp.corpora.models import Corpus
from webapp.runs.models import ModelEntry, Run, Sample

from tests.webapp.accounts.roles import make_people
from tests.webapp.runs.factories import make_corpus


@pytest.fixture(autouse=True)
def _fast(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RUNS_ROOT = tmp_path / "runs"
    settings.RUNS_ROOT.mkdir()


@pytest.fixture
def people(db):
    return make_people()


def as_(client, user):
    client.force_login(user)
    return client


def _run(team, corpus, state=Run.State.RUNNING, name="demo", **fields):
    return Run.objects.create(team=team, name=name, corpus=corpus, state=state, config={"run": {"steps": 12}}, **fields)


# --- home ------------------------------------------------------------------------------------------


def test_home_without_a_corpus_says_upload_one(client, people):
    html = as_(client, people.owner).get("/").content.decode()

    assert 'id="next-steps"' in html and "Upload a corpus" in html
    assert 'id="start-demo-run"' not in html


def test_home_offers_a_demo_run_on_the_ready_sample_corpus(client, people):
    sample = make_corpus(people.team, name=SAMPLE_CORPUS)
    make_corpus(people.team, name="Later one")  # newer, but the sample corpus is the first step

    html = as_(client, people.owner).get("/").content.decode()

    assert "The sample corpus" in html and SAMPLE_CORPUS in html
    link = re.search(r'<a class="button" id="start-demo-run" href="([^"]+)"', html).group(1)
    assert link == f"/runs/new?preset=cpu-demo&amp;corpus={sample.pk}"
    assert f'href="/runs/new?corpus={sample.pk}">Start a run</a>' in html  # per ready corpus too


def test_home_says_when_the_corpus_is_still_being_prepared(client, people):
    make_corpus(people.team, name=SAMPLE_CORPUS, status=Corpus.Status.INGESTING)

    html = as_(client, people.owner).get("/").content.decode()

    assert "is being prepared" in html and 'id="start-demo-run"' not in html


def test_home_shows_the_run_in_progress(client, people):
    corpus = make_corpus(people.team)
    run = _run(people.team, corpus, last_step=3)

    html = as_(client, people.owner).get("/").content.decode()

    step = html[html.index('id="step-run"'):html.index('id="step-review"')]
    assert f'href="/runs/{run.pk}/">demo</a>' in step and "step 3 of 12" in step
    assert 'id="latest-runs"' in html and 'id="start-demo-run"' not in html


def test_an_annotators_home_is_her_review_queue_without_buttons_she_cannot_use(client, people):
    run = _run(people.team, make_corpus(people.team))
    sample = Sample.objects.create(run=run, seq=1, index=0, step=1, task="doc_general_qa", question="q", reference="r",
                                   response="a", verdict="YES")
    ReviewItem.objects.create(sample=sample, run=run, team=people.team, task="doc_general_qa", step=1, verifier_yes=True)

    html = as_(client, people.annotator).get("/").content.decode()

    assert "Your review queue" in html and f"/review/{run.pk}/next" in html and "Start reviewing" in html
    for absent in ("Upload", "New run", "Start a demo run", "Start a run", 'href="/corpora/"', 'href="/runs/"'):
        assert absent not in html, absent


def test_an_annotator_with_nothing_to_review_is_told_so(client, people):
    html = as_(client, people.annotator).get("/").content.decode()

    assert 'id="home-review-empty"' in html and "Upload" not in html


def test_the_run_list_and_corpora_index_hide_actions_from_an_annotator(client, people):
    as_(client, people.annotator)
    runs = client.get("/runs/").content.decode()
    corpora = client.get("/corpora/").content.decode()

    assert "New run" not in runs and "Configure the first one" not in runs and "/review/" in runs
    assert "Upload a corpus" not in corpora and "Upload an evaluation set" not in corpora and "/review/" in corpora
    assert "New run" in as_(client, people.owner).get("/runs/").content.decode()


@pytest.mark.parametrize("url, doing", [("/corpora/upload/", "Uploading a corpus"),
                                        ("/corpora/evalsets/upload/", "Uploading an evaluation set"),
                                        ("/runs/new", "Starting a run")])
def test_an_annotator_who_opens_a_members_form_by_url_is_told_why_not(client, people, url, doing):
    response = as_(client, people.annotator).get(url)

    assert response.status_code == 403
    html = response.content.decode()
    assert f"{doing} needs a member&#x27;s role in a team" in html and "<form" not in html.split("</header>")[-1]


# --- error pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_a_missing_run_is_the_styled_404(client, people, settings, debug):
    settings.DEBUG = debug
    response = as_(client, people.owner).get("/runs/999999/")

    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="not-found"' in html and "Nothing here" in html
    assert 'class="topbar"' in html and 'href="/runs/"' in html  # the navigation stays
    assert "URLconf" not in html and "urlpatterns" not in html.lower()


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_url_is_the_styled_404_without_the_url_list(client, people, settings, debug):
    settings.DEBUG = debug
    response = as_(client, people.owner).get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="not-found"' in html and "/no/such/page/" in html
    assert "Using the URLconf" not in html and "healthz" not in html


def test_the_404_says_the_views_reason(client, people):
    run = _run(people.other_team, make_corpus(people.other_team))

    response = as_(client, people.owner).get(f"/runs/{run.pk}/")

    assert response.status_code == 404 and "No such run." in response.content.decode()


def test_json_404s_stay_json_in_debug(client, people, settings):
    settings.DEBUG = True
    response = as_(client, people.owner).get("/review/runs/999999/metrics.json")

    assert response.status_code == 404 and response.json() == {"error": "No such run."}


def test_a_403_is_the_styled_page_with_the_reason(client, people):
    response = as_(client, people.owner).get("/fleet/")

    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="forbidden"' in html and "Admins only." in html and 'class="topbar"' in html


def test_the_500_page_renders_without_a_request():
    html = loader.get_template("500.html").render({})

    assert 'id="server-error"' in html and "Something went wrong" in html


# --- every page --------------------------------------------------------------------------------------


def test_every_page_links_the_favicon_the_shared_script_and_marks_the_current_page(client, people):
    html = as_(client, people.owner).get("/runs/").content.decode()

    assert '<link rel="icon" href="/static/studio/favicon.svg"' in html
    assert '<script src="/static/studio/studio.js"></script>' in html
    assert '<a href="/runs/" aria-current="page">Runs</a>' in html
    assert '<a href="/corpora/">Corpora</a>' in html
    assert 'aria-current="page">SPELL Studio' in as_(client, people.owner).get("/").content.decode()


def test_the_favicon_and_shared_script_are_served(client, people):
    from django.contrib.staticfiles import finders

    assert finders.find("studio/favicon.svg") and finders.find("studio/studio.js")
    script = open(finders.find("studio/studio.js")).read()
    assert "data-confirm" in script and "window.confirm" in script


def test_the_admin_pages_link_the_favicon_too(client, people):
    html = as_(client, people.admin).get("/admin/").content.decode()

    assert 'href="/static/studio/favicon.svg"' in html


def test_the_nav_marks_nested_pages(client, people):
    from webapp.pages import current_section

    assert current_section("/corpora/3/sets/2/") == "corpora"
    assert current_section("/review/items/4/") == "review"
    assert current_section("/accounts/tokens/") == "tokens"
    assert current_section("/") == "home"
    assert current_section("/login/") == ""


def test_model_entries_do_not_matter_for_the_home_page(client, people):
    ModelEntry.objects.create(name="tiny", path="/nowhere")
    assert as_(client, people.admin).get("/").status_code == 200
