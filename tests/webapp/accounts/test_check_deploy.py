"""`manage.py check --deploy` is clean with production settings."""

import secrets
import subprocess
import sys

from tests.support import REPO


def test_check_deploy_is_clean_in_production(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin", "PRODUCTION": "1", "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "studio.example.com", "SPELL_VAR_DIR": str(tmp_path),
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }

    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
