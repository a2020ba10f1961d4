"""Bad input, fuzzed: the run form (POST /runs/new) with hypothesis-made values in any of its
fields - words in number fields, huge and non-finite numbers, lists that are not lists, choices
that do not exist, another team's corpus, control characters. The page answers with the form and
its errors (or a redirect to a valid run), never a 500; a run it accepts has a valid config."""

from __future__ import annotations

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from spell.config import config_from_mapping
from webapp.accounts.models import Membership, Team
from webapp.corpora.models import Corpus
from webapp.runs.forms import RunForm, form_values, to_text
from webapp.runs.models import ModelEntry, Run

NASTY_TEXT = st.sampled_from([
    "", " ", "nan", "NaN", "inf", "-inf", "1e309", "-1e309", "1e-400", "0x10", "1_000", "٣", "９", "-0", "+1",
    "2147483648", "9" * 400, "1,2,3", "a=b", "=1", "doc_mc=nan", "doc_mc=1e309, x=2", ",,,", "[1, 2]", "{}", "None",
    "true", "../../etc/passwd", "<script>alert(1)</script>", "'; DROP TABLE runs_run; --", "\u202e\u0000", "\x00",
    "é" * 1000,
])
ANY_VALUE = st.one_of(
    NASTY_TEXT,
    st.text(max_size=60),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.integers(-5, 10**9), max_size=6).map(lambda xs: ", ".join(map(str, xs))),
)


@pytest.fixture
def form_world(db, settings, tmp_path, django_user_model):
    settings.RUNS_ROOT = tmp_path / "runs"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    team, other = Team.objects.create(name="Lab", slug="lab"), Team.objects.create(name="Other", slug="other")
    user = django_user_model.objects.create_user("fuzzer", password="pw-for-fuzz-1")
    Membership.objects.create(user=user, team=team)
    mine = Corpus.objects.create(team=team, name="Mine", status=Corpus.Status.READY)
    theirs = Corpus.objects.create(team=other, name="Theirs", status=Corpus.Status.READY)
    entry = ModelEntry.objects.create(name="tiny", path=str(tmp_path / "tiny"), max_positions=8192)
    return user, mine, theirs, entry


def valid_post(mine, entry) -> dict:
    data = {"name": "fuzzed", "preset": "cpu-demo", "model_entry": str(entry.pk), "corpus": str(mine.pk), "queue": "cpu"}
    for field, value in form_values(config_from_mapping({"preset": "cpu-demo"})).items():
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[field] = "on"
        else:
            data[field] = to_text(value)
    return data




@hsettings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_it_never_answers_500_to_a_fuzzed_run_form(client, form_world, data):
    user, mine, theirs, entry = form_world
    client.force_login(user)
    post = valid_post(mine, entry)
    fields = sorted(RunForm(user=user).fields)
    special = {
        "corpus": st.sampled_from([str(theirs.pk), "0", "-1", "abc", str(10**20)]),
        "model_entry": st.sampled_from(["0", "x", str(10**20), ""]),
        "preset": st.sampled_from(["paper-7b", "nope", "", "cpu-demo\x00"]),
        "queue": st.sampled_from(["gpu.1", "default", "", "cpu; rm -rf /"]),
    }
    chosen = data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=6, unique=True), label="fields")
    for field in chosen:
        if data.draw(st.booleans(), label=f"drop {field}"):
            post.pop(field, None)
        else:
            post[field] = data.draw(special.get(field, ANY_VALUE), label=field)

    before = Run.objects.count()
    response = client.post(reverse("runs:new"), post)

    assert response.status_code in (200, 302, 400), response.status_code
    if response.status_code == 302:
        run = Run.objects.latest("pk")
        assert Run.objects.count() == before + 1 and run.corpus_id == mine.pk
        config_from_mapping(run.config).validate()  # what was frozen is a valid config
    else:
        assert Run.objects.count() == before
        assert response.context["form"].errors
