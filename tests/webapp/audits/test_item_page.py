"""The annotator's page and the label POST: blind until submit, conflicts, bad input, access."""

from webapp.audits.models import Label, ReviewItem, ReviewLog
from webapp.audits import services

from .conftest import queue_item


def url(item):
    return f"/review/items/{item.pk}/"


def test_it_shows_the_judgment_blind(client, people, run):
    item = queue_item(run, verifier_yes=True, extra={"verifier_outputs": ["secret reasoning [[YES]]"]})
    client.force_login(people.annotator)
    r = client.get(url(item))
    assert r.status_code == 200
    body = r.content.decode()
    for text in ("Which city hosts the mill?", "Lisbon", "The answer is Lisbon.", 'id="label-form"'):
        assert text in body
    assert 'id="verdict"' not in body and "The verifier said" not in body
    assert "secret reasoning" not in body and "rule score" not in body
    item.refresh_from_db()
    assert item.reserved_by == people.annotator  # opening reserves it


def test_it_reveals_the_verdict_and_votes_after_the_label(client, people, run):
    item = queue_item(run, verifier_yes=True, votes=[1, 0, 1], extra={"verifier_outputs": ["because [[YES]]"]})
    client.force_login(people.annotator)
    r = client.post(url(item) + "label", {"label": "not_equivalent", "note": "wrong city", "stay": "1"})  # Shift+Enter
    assert r.status_code == 302 and r["Location"] == url(item)
    body = client.get(url(item)).content.decode()
    assert 'id="verdict"' in body and "YES (equivalent)" in body
    assert "YES, NO, YES" in body and "because [[YES]]" in body
    assert "you disagree with the verifier" in body
    assert Label.objects.get().note == "wrong city"


def test_it_refuses_a_missing_label_with_a_clear_message(client, people, run):
    item = queue_item(run)
    client.force_login(people.annotator)
    r = client.post(url(item) + "label", {"note": "hm"})
    assert r.status_code == 400
    assert "Choose a label" in r.content.decode()
    assert not Label.objects.exists()


def test_it_answers_409_when_another_annotator_holds_the_item(client, people, run):
    item = services.reserve_next(people.annotator, queue_item(run).run)
    client.force_login(people.annotator2)
    page = client.get(url(item)).content.decode()
    assert "Another annotator has this item reserved" in page and 'id="label-form"' not in page
    r = client.post(url(item) + "label", {"label": "equivalent"})
    assert r.status_code == 409
    assert "reserved" in r.content.decode()


def test_it_shows_a_complete_item_without_form_or_verdict(client, people, run):
    item = queue_item(run)
    services.submit_label(people.annotator, item, "equivalent")
    client.force_login(people.annotator2)
    body = client.get(url(item)).content.decode()
    assert "already has all its labels" in body
    assert 'id="label-form"' not in body and 'id="verdict"' not in body


def test_it_shows_document_excerpts_reported_by_the_run(client, people, run):
    item = queue_item(run, extra={"excerpts": [{"doc_id": "d7", "title": "Mills", "text": "The mill stood in Lisbon."}]})
    client.force_login(people.annotator)
    body = client.get(url(item)).content.decode()
    assert "The mill stood in Lisbon." in body and "d7" in body


def test_it_is_404_for_another_teams_item(client, people, run, other_run):
    theirs = queue_item(other_run)
    client.force_login(people.annotator)
    assert client.get(url(theirs)).status_code == 404
    assert client.post(url(theirs) + "label", {"label": "equivalent"}).status_code == 404
    assert not Label.objects.exists() and not ReviewLog.objects.exists()
    assert ReviewItem.objects.get(pk=theirs.pk).reserved_by is None


def test_it_is_404_for_a_missing_item(client, people):
    client.force_login(people.annotator)
    assert client.get("/review/items/999999/").status_code == 404


def test_it_sends_anonymous_users_to_log_in(client, run):
    item = queue_item(run)
    assert client.get(url(item)).status_code == 302
    assert client.post(url(item) + "label", {"label": "equivalent"}).status_code == 302
    assert not Label.objects.exists()


def test_the_label_endpoint_takes_only_post(client, people, run):
    item = queue_item(run)
    client.force_login(people.annotator)
    assert client.get(url(item) + "label").status_code == 405


def test_team_members_and_admins_may_review_too(client, people, run):
    for who in (people.owner, people.admin):
        item = queue_item(run)
        client.force_login(who)
        assert client.post(url(item) + "label", {"label": "unsure"}).status_code == 302
    assert Label.objects.count() == 2
