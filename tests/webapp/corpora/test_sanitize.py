"""Uploaded file names: sanitised, never escaping the corpus folder."""

import pytest

from webapp.corpora.services import sanitize_filename


@pytest.mark.parametrize("name, expected", [
    ("notes.txt", "notes.txt"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    ("/abs/path/doc.jsonl", "doc.jsonl"),
    ("..", "file"),
    ("...", "file"),
    (".hidden.txt", "hidden.txt"),
    ("a b;c|d$(rm -rf).pdf", "a b_c_d_rm -rf_.pdf"),
    ("résumé.txt", "r_sum_.txt"),
    ("", "file"),
])
def test_it_sanitises_names(name, expected):
    assert sanitize_filename(name) == expected


def test_it_keeps_the_suffix_of_long_names():
    name = sanitize_filename("x" * 500 + ".parquet")

    assert len(name) <= 120
    assert name.endswith(".parquet")


@pytest.mark.parametrize("name", ["../a.txt", "a/../../b.txt", "/x.txt", "..\\c.txt", "\x00.txt", "con/../..", "ﹰ..／..／x.txt"])
def test_it_never_returns_a_path(name):
    safe = sanitize_filename(name)

    assert "/" not in safe and "\\" not in safe and safe not in ("", ".", "..")
    assert not safe.startswith(".")
