import re

from django.core import mail

from tests.webapp.accounts.roles import PASSWORD


def test_it_resets_a_password_by_email(client, people):
    client.post("/accounts/password-reset/", {"email": "owner@example.com"})
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)

    form = client.get(link, follow=True)
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "brand-new-phrase-42",
                                                     "new_password2": "brand-new-phrase-42"})

    people.owner.refresh_from_db()
    assert done.status_code == 302
    assert people.owner.check_password("brand-new-phrase-42")
    assert not people.owner.check_password(PASSWORD)


def test_an_unknown_address_says_the_same_and_sends_nothing(client, people):
    response = client.post("/accounts/password-reset/", {"email": "nobody@example.com"}, follow=True)

    assert response.status_code == 200
    assert b"Check your e-mail" in response.content
    assert mail.outbox == []


def test_a_bad_link_is_explained(client, db):
    response = client.get("/accounts/reset/MQ/bad-token/")

    assert response.status_code == 200
    assert b"does not work" in response.content
