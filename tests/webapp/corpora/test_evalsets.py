"""Evaluation sets: upload, reading with spell.data.evalsets, the page, access."""

from __future__ import annotations

import json

import pytest

from tests.webapp.corpora.files import SAMPLE_EVAL, upload
from webapp.corpora import services
from webapp.corpora.models import EvalSet
from workers.ingest_tasks import ingest_eval_set

URL = "/corpora/evalsets/upload/"


def sample(name):
    path = SAMPLE_EVAL / name
    return upload(path.name, path.read_bytes())


@pytest.mark.parametrize("filename, fmt, task", [
    ("longbench_v2_sample.json", "longbench_v2", "doc_mc"),
    ("longbench_qa_sample.jsonl", "longbench_qa", "doc_general_qa"),
    ("docmath_sample.json", "docmath", "docmath_qa"),
])
def test_it_reads_each_public_format(member_client, team, filename, fmt, task, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = member_client.post(URL, {"name": fmt, "team": team.pk, "file": sample(filename), "format": ""})
    eval_set = EvalSet.objects.get()
    assert response.status_code == 302 and len(callbacks) == 1

    ingest_eval_set.apply(args=[eval_set.pk]).get()

    eval_set.refresh_from_db()
    assert eval_set.status == EvalSet.Status.READY, eval_set.error
    assert eval_set.format == fmt
    assert eval_set.items > 0 and eval_set.stats["tasks"] == {task: eval_set.items}
    items = services.eval_set_items(eval_set)
    assert len(items) == eval_set.items and items[0].task == task
    page = member_client.get(f"/corpora/evalsets/{eval_set.pk}/").content.decode()
    assert items[0].id in page
    assert "evalsets" in member_client.get("/corpora/").content.decode()


def test_a_wrong_format_fails_with_the_readers_message(team):
    eval_set = services.create_eval_set_upload(team, "Odd", upload("odd.json", json.dumps([{"foo": 1}])))
    ingest_eval_set.apply(args=[eval_set.pk]).get()

    eval_set.refresh_from_db()
    assert eval_set.status == EvalSet.Status.FAILED
    assert "unknown eval-set format" in eval_set.error
    assert str(eval_set.folder) not in eval_set.error  # no server paths in messages
    assert not eval_set.items_path.exists()


def test_a_forced_format_that_does_not_fit_fails_clearly(team):
    eval_set = services.create_eval_set_upload(team, "Forced", sample("docmath_sample.json"), format="longbench_v2")
    ingest_eval_set.apply(args=[eval_set.pk]).get()

    eval_set.refresh_from_db()
    assert eval_set.status == EvalSet.Status.FAILED and "read as longbench_v2" in eval_set.error


@pytest.mark.parametrize("name, content, message", [
    ("bench.csv", b"a,b", "not supported"),
    ("empty.json", b"", "empty"),
])
def test_bad_files_are_refused_at_upload(member_client, team, name, content, message):
    response = member_client.post(URL, {"name": "x", "team": team.pk, "file": upload(name, content)})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not EvalSet.objects.exists()


def test_not_utf8_fails_clearly(team):
    eval_set = services.create_eval_set_upload(team, "Latin", upload("l.json", "[{\"x\": \"caf\xe9\"}]".encode("latin-1")))
    ingest_eval_set.apply(args=[eval_set.pk]).get()

    eval_set.refresh_from_db()
    assert eval_set.status == EvalSet.Status.FAILED and "not UTF-8" in eval_set.error


def test_write_eval_set_copies_the_items_for_a_run(team, tmp_path):
    eval_set = services.create_eval_set_upload(team, "Math", sample("docmath_sample.json"))
    ingest_eval_set.apply(args=[eval_set.pk]).get()
    eval_set.refresh_from_db()

    info = services.write_eval_set(eval_set, tmp_path / "run" / "eval" / "math.jsonl")

    lines = (tmp_path / "run" / "eval" / "math.jsonl").read_text().splitlines()
    assert info["items"] == len(lines) == eval_set.items and len(info["hash"]) == 64


def test_other_teams_get_404(client, outsider, team):
    eval_set = services.create_eval_set_upload(team, "Math", sample("docmath_sample.json"))
    client.force_login(outsider)

    for path in ("/corpora/evalsets/{}/", "/corpora/evalsets/{}/status.json", "/corpora/evalsets/{}/delete/"):
        assert client.get(path.format(eval_set.pk)).status_code == 404
