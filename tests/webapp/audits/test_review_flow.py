"""The review flow leads: a label opens the next item (and says what the verifier said), Shift+Enter
and a changed label stay, a missing label says what to press, and the queue's counts add up."""

import re

from webapp.audits import services
from webapp.audits.models import Label

from .conftest import queue_item


def url(item):
    return f"/review/items/{item.pk}/"


def test_a_label_opens_the_next_item_and_says_what_the_verifier_said(client, people, run):
    first, second = queue_item(run, verifier_yes=True), queue_item(run, verifier_yes=False)
    client.force_login(people.annotator)
    client.get(url(first))

    r = client.post(url(first) + "label", {"label": "not_equivalent"})

    assert r.status_code == 302 and r["Location"] == f"/review/{run.pk}/next"
    page = client.get(r["Location"], follow=True)
    assert page.redirect_chain[-1][0] == url(second)
    body = page.content.decode()
    assert f"Item {first.pk} labelled Not equivalent: the verifier said YES (equivalent). You disagree." in body
    assert f'data-prev-url="{url(first)}"' in body  # K goes back to it
    assert Label.objects.get(item=first).label == "not_equivalent"


def test_shift_enter_stays_on_the_item(client, people, run):
    item = queue_item(run)
    client.force_login(people.annotator)

    r = client.post(url(item) + "label", {"label": "equivalent", "stay": "1"})

    assert r["Location"] == url(item)
    assert 'id="verdict"' in client.get(url(item)).content.decode()


def test_changing_a_label_stays_on_the_item(client, people, run):
    item = queue_item(run)
    services.submit_label(people.annotator, item, "equivalent")
    queue_item(run)  # there is a next one; a correction still stays
    client.force_login(people.annotator)

    r = client.post(url(item) + "label", {"label": "unsure"})

    assert r["Location"] == url(item)


def test_the_item_page_says_what_enter_does_and_has_a_live_hint(client, people, run):
    item = queue_item(run)
    client.force_login(people.annotator)

    body = client.get(url(item)).content.decode()

    assert re.search(r'id="label-hint" role="alert"', body)
    assert 'id="submit-stay"' in body and "Submitting opens the next item" in body
    assert 'name="stay"' in body


def test_enter_without_a_label_is_a_clear_400(client, people, run):
    item = queue_item(run)
    client.force_login(people.annotator)

    r = client.post(url(item) + "label", {})

    assert r.status_code == 400 and "Choose a label: equivalent (1), not equivalent (2) or unsure (3)." in r.content.decode()


def test_the_queue_counts_add_up(client, people, run):
    a, b, c = queue_item(run), queue_item(run, needed=2), queue_item(run)
    services.submit_label(people.annotator, a, "equivalent")
    services.submit_label(people.annotator, b, "equivalent")  # labelled once, needs a second
    client.force_login(people.annotator2)

    body = client.get("/review/").content.decode()

    assert "1 waiting, 2 labelled, 3 in all" in body
    assert "(1 labelled once, waiting for a second annotator)" in body


def test_the_run_panel_script_words_the_counts_so_they_add_up():
    from django.contrib.staticfiles import finders

    script = open(finders.find("studio/review.js")).read()
    assert '" waiting, " + q.labelled + " labelled, " + q.items + " in all"' in script
    assert "event.shiftKey" in script
