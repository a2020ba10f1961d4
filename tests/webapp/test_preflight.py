"""Bad configuration stops `make run` with one clear line saying what to fix, not a traceback."""

import subprocess
import sys

import pytest

from tests.support import REPO


def launch(tmp_path, **env_overrides):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SPELL_VAR_DIR=str(tmp_path / "var"), **env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "webapp.launcher", "--setup-only"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


def assert_one_clear_line(result, *needles):
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_it_names_an_unreachable_database(tmp_path):
    result = launch(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere", DEFAULT_MODEL_PATH=str(tmp_path))

    assert_one_clear_line(result, "database unreachable", "127.0.0.1:1", "DATABASE_URL")


def test_it_names_a_database_url_it_cannot_parse(tmp_path):
    result = launch(tmp_path, DATABASE_URL="mongodb://somewhere/db")

    assert_one_clear_line(result, "DATABASE_URL")


def test_it_names_an_unreachable_redis(tmp_path):
    result = launch(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")

    assert_one_clear_line(result, "redis unreachable", "REDIS_URL")


def test_it_names_a_redis_url_that_is_not_redis(tmp_path):
    result = launch(tmp_path, REDIS_URL="http://127.0.0.1:6379")

    assert_one_clear_line(result, "REDIS_URL")


def test_it_names_a_missing_model_folder(tmp_path):
    missing = tmp_path / "no-such-model"

    result = launch(tmp_path, DEFAULT_MODEL_PATH=str(missing))

    assert_one_clear_line(result, "model folder missing", str(missing))


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = launch(tmp_path, PRODUCTION="1", ALLOWED_HOSTS="example.org")

    assert_one_clear_line(result, "SECRET_KEY")


@pytest.mark.parametrize("flag", ["--help"])
def test_it_documents_its_options(flag):
    result = subprocess.run([sys.executable, "-m", "webapp.launcher", flag], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "--setup-only" in result.stdout
