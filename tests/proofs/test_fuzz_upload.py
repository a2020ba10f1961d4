"""Bad input, fuzzed: the corpus upload (POST /corpora/upload/) with hypothesis-made files -
random bytes, broken UTF-8, JSON lines that are almost right, zip archives with hostile member
names (../, absolute, nested zips), PDFs that are only a header - under hostile file names, in
any number, with fuzzed options and teams. The page answers with the form and its messages or a
redirect to the new corpus, never a 500; no file lands outside the corpus folder; and the ingest
of anything accepted (run here in-process, the task's own code) ends READY or FAILED with a
message, never with an exception."""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings as hsettings, strategies as st

from webapp.accounts.models import Membership, Team
from webapp.corpora.models import Corpus

URL = "/corpora/upload/"
NAMES = itertools.count()  # corpus names are unique per team; examples share the database


def usable_base_name(name: str) -> bool:
    """What a browser can send: a file's own name (it never sends folders), not empty, not . or ..,
    no NUL or line break (browsers percent-encode those)."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0\r\n")


# Hostile names (what a script, not a browser, may send) are in the fixed list and reach the server's
# own multipart parser unchanged (see multipart_body); drawn names are ones a browser could send.
FILE_NAMES = st.one_of(
    st.sampled_from([
        "a.txt", "a.md", "a.jsonl", "a.json", "a.pdf", "a.zip", "a.csv", "a.exe", "noext", ".hidden.txt",
        "../../escape.txt", "/etc/passwd", "..\\..\\win.txt", "a" * 300 + ".txt", "CON.txt", "ünïcødé.md",
        "semi;colon.txt", "quote\".txt", "sp ace.jsonl", "tab\t.txt", "x.TXT", "x.JsonL", "\u202eevil.txt",
    ]),
    st.tuples(st.text(min_size=1, max_size=40), st.sampled_from([".txt", ".md", ".jsonl", ".zip", ".pdf", ""]))
    .map("".join).filter(usable_base_name),
)
BOUNDARY = "fuzzboundary7MA4YWxkTrZu0gW"


def multipart_body(fields: dict[str, str], files: list[tuple[str, bytes]]) -> bytes:
    """A multipart/form-data body as a client writes it, so every file name, hostile ones included,
    goes through Django's real multipart parser (the test client's helper would clean names first).
    Quotes and line breaks in names are percent-encoded, as browsers do."""
    def quoted(name: str) -> str:
        return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")

    parts = []
    for key, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
                     + value.encode("utf-8", "surrogatepass") + b"\r\n")
    for name, content in files:
        head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{quoted(name)}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")
        parts.append(head.encode("utf-8", "surrogatepass") + content + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name or "x", data)
    return buffer.getvalue()


WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)
JSON_LINE = st.one_of(
    st.fixed_dictionaries({"text": WORDS}, optional={"title": WORDS, "cluster": st.text(max_size=10),
                                                    "numeric": st.one_of(st.booleans(), st.text(max_size=3))}),
    st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), WORDS), max_size=3),
    st.lists(st.integers(), max_size=3),
).map(lambda obj: json.dumps(obj, ensure_ascii=False).encode())
CONTENT = st.one_of(
    st.binary(max_size=3000),
    WORDS.map(str.encode),
    st.lists(st.one_of(JSON_LINE, st.binary(max_size=50)), max_size=12).map(lambda lines: b"\n".join(lines)),
    st.binary(max_size=500).map(lambda b: b"%PDF-1.4\n" + b),
    st.lists(st.tuples(st.sampled_from(["doc.txt", "../up.txt", "/abs.md", "dir/", "a/../../b.jsonl", "inner.zip",
                                        "ok.md", ""]),
                       st.one_of(st.binary(max_size=300), WORDS.map(str.encode))), max_size=4).map(zip_of),
)
NUMBERISH = st.one_of(st.sampled_from(["", "nan", "inf", "-1", "0", "1e309", "abc", "20", "0.8", "9" * 50]),
                      st.integers(-(10**12), 10**12).map(str), st.floats().map(repr))


@pytest.fixture
def upload_world(db, settings, tmp_path, django_user_model):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    team, other = Team.objects.create(name="Lab", slug="lab"), Team.objects.create(name="Other", slug="other")
    user = django_user_model.objects.create_user("uploader", password="pw-for-fuzz-1")
    Membership.objects.create(user=user, team=team)
    return user, team, other, Path(settings.MEDIA_ROOT)


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_it_never_answers_500_to_a_fuzzed_upload(client, upload_world, django_capture_on_commit_callbacks, data):
    from workers.ingest_tasks import ingest_corpus

    user, team, other, media = upload_world
    client.force_login(user)
    files = [(data.draw(FILE_NAMES, label="name"), data.draw(CONTENT, label="content"))
             for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 3, 0]), label="files"))]
    post = {
        "name": data.draw(st.sampled_from([0, 0, 1]).flatmap(lambda x: st.just(f"Fuzzed {next(NAMES)}") if x == 0 else st.text(max_size=300)), label="corpus name"),
        "team": data.draw(st.sampled_from([str(team.pk)] * 6 + [str(other.pk), "", "x", str(10**20)]), label="team"),
        "cluster_size": data.draw(st.sampled_from([None] * 4 + [1]).flatmap(lambda x: st.just("20") if x is None else NUMBERISH), label="cluster_size"),
        "dedup_threshold": data.draw(st.sampled_from([None] * 4 + [1]).flatmap(lambda x: st.just("0.8") if x is None else NUMBERISH), label="dedup_threshold"),
        "min_chars": data.draw(st.sampled_from([None] * 4 + [1]).flatmap(lambda x: st.just("0") if x is None else NUMBERISH), label="min_chars"),
    }
    before = Corpus.objects.count()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(URL, multipart_body(post, files), content_type=f"multipart/form-data; boundary={BOUNDARY}")

    assert response.status_code in (200, 302, 400), response.status_code
    event(f"answered {response.status_code}")
    for path in media.rglob("*"):  # nothing outside a corpus folder, whatever the names said
        assert path.resolve().is_relative_to(media.resolve())
    if response.status_code != 302:
        event("refused: " + ", ".join(sorted(response.context["form"].errors)))
        assert Corpus.objects.count() == before
        return
    corpus = Corpus.objects.latest("pk")
    assert corpus.team_id == team.pk
    stored = [p for p in corpus.upload_folder.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(corpus.upload_folder.resolve()) for p in stored)
    ingest_corpus.apply(args=[corpus.pk], throw=True)  # the task's code, in this process
    corpus.refresh_from_db()
    event(f"ingest ended {corpus.status}")
    assert corpus.status in (Corpus.Status.READY, Corpus.Status.FAILED), corpus.status
    if corpus.status == Corpus.Status.FAILED:
        assert corpus.error and "Traceback" not in corpus.error
    detail = client.get(f"/corpora/{corpus.pk}/")
    assert detail.status_code == 200
