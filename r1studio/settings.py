"""Django settings for R1 Studio, read from the environment (see `.env.example`).

A `.env` file in the repository root is read too. Every variable has a default that works on a fresh clone: SQLite and a data directory under
`var/`, a secret key generated once into `var/secret_key`, and the embedded Redis whose URL
`manage.py studio` hands to its children. A malformed value stops start-up with one line naming
the variable (`r1studio.env.EnvError`).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF

from r1studio.env import (
    check_ray_address,
    check_redis_url,
    env_bool,
    env_header,
    env_int,
    env_list,
    env_path,
    env_str,
    load_env_file,
    parse_database_url,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
load_env_file(BASE_DIR / ".env")  # optional; variables already in the environment win

# --- core -----------------------------------------------------------------------------------
SECRET_KEY = secret_key("SECRET_KEY", VAR_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Where runs, checkpoints, datasets and the toy assets live (`<data dir>/runs/<run id>/`).
R1STUDIO_DATA_DIR = env_path("R1STUDIO_DATA_DIR", VAR_DIR / "data", base=BASE_DIR)
# `make run` writes the demo admin's generated password here (mode 0600) and names the file in
# its closing banner; delete the file once the password is changed or noted elsewhere.
R1STUDIO_ADMIN_PASSWORD_FILE = env_path(
    "R1STUDIO_ADMIN_PASSWORD_FILE", VAR_DIR / "admin-password.txt", base=BASE_DIR
)
# Runs read models, datasets and benchmarks only inside the data directory, the benchmarks
# folder and these folders (`:`-separated; relative ones from the repository root): a config
# naming any other path is refused (pipeline/access.py; the supervisor hands them to the runs).
R1STUDIO_ALLOWED_ROOTS = [
    path if path.is_absolute() else BASE_DIR / path
    for path in (Path(p.strip()).expanduser() for p in env_str("R1STUDIO_ALLOWED_ROOTS").split(":"))
    if str(path) not in ("", ".")
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "template_partials",
    "r1studio.core",
    "r1studio.runs",
    "r1studio.metrics",
    "r1studio.traces",
    "r1studio.curation",
    "r1studio.evals",
    "r1studio.workers",
    "r1studio.recipes",
    "r1studio.api",
    "ninja",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # 400 for NUL characters in the URL or form fields, JSON 413/415 for API bodies.
    "r1studio.core.middleware.RequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a login unless it is marked @login_not_required (login, /healthz).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "r1studio.urls"
WSGI_APPLICATION = "r1studio.wsgi.application"
ASGI_APPLICATION = "r1studio.asgi.application"
# Request bodies over this size are refused (the API answers 413): configs are a few kB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("R1STUDIO_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024)

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
                "r1studio.core.context_processors.navigation",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": parse_database_url(
        "DATABASE_URL",
        env_str("DATABASE_URL", "sqlite:///var/db.sqlite3"),
        base=BASE_DIR,
    )
}
# The web server (r1studio/asgi.py turns it on) keeps PostgreSQL connections in a pool: opening
# one costs a server process and ~5 ms, once per request with CONN_MAX_AGE 0. Off elsewhere:
# Celery's prefork workers fork, and a pool's threads do not survive a fork.
R1STUDIO_DB_POOL = env_bool("R1STUDIO_DB_POOL", False)
R1STUDIO_DB_POOL_SIZE = env_int("R1STUDIO_DB_POOL_SIZE", 20, minimum=1)
if R1STUDIO_DB_POOL and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": R1STUDIO_DB_POOL_SIZE,
        "timeout": 10,  # seconds a request waits for a free connection before an error
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery -----------------------------------------------------------------------
# `manage.py studio` starts an embedded Redis and puts its URL into its children's environment;
# anything started by hand without REDIS_URL talks to a local Redis on the standard port.
REDIS_URL = check_redis_url("REDIS_URL", env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))
CELERY_BROKER_URL = REDIS_URL
# The Run row is the source of truth; Celery keeps no results.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A training task holds its message for hours; Redis would hand an unacknowledged message to
# another worker after the visibility timeout, so make that longer than any run.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7 * 24 * 3600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Workers write a heartbeat row this often and count as offline after this long without one.
R1STUDIO_HEARTBEAT_SECONDS = env_int("R1STUDIO_HEARTBEAT_SECONDS", 10, minimum=1)
R1STUDIO_WORKER_OFFLINE_AFTER = 60

# Runs: the supervisor stamps `Run.heartbeat_at` this often; a running run whose stamp is older
# than R1STUDIO_LOST_AFTER_SECONDS is marked `lost`. Cancel sends SIGTERM, then SIGKILL after
# R1STUDIO_CANCEL_GRACE_SECONDS.
R1STUDIO_RUN_HEARTBEAT_SECONDS = env_int("R1STUDIO_RUN_HEARTBEAT_SECONDS", 5, minimum=1)
R1STUDIO_LOST_AFTER_SECONDS = env_int("R1STUDIO_LOST_AFTER_SECONDS", 60, minimum=1)
R1STUDIO_CANCEL_GRACE_SECONDS = env_int("R1STUDIO_CANCEL_GRACE_SECONDS", 30, minimum=1)
# An external run (a script reporting over HTTP; it heartbeats every 30 s when idle) is marked
# `lost` after this long without a batch; it is running again when it next reports.
R1STUDIO_EXTERNAL_LOST_AFTER_SECONDS = env_int(
    "R1STUDIO_EXTERNAL_LOST_AFTER_SECONDS", 300, minimum=1
)
# Training stages (grpo, sft) on a worker with several GPUs run under `accelerate launch` with
# this many processes; 1 runs the stage as a plain process.
R1STUDIO_TRAIN_PROCESSES = env_int("R1STUDIO_TRAIN_PROCESSES", 1, minimum=1)
# A running run with no event for this long gets the "stalled" alert.
R1STUDIO_STALL_SECONDS = env_int("R1STUDIO_STALL_SECONDS", 900, minimum=1)
# Ray cluster (r1studio/runs/ray_executor.py): the address of its dashboard, where the Jobs API
# answers. Unset: no cluster, and the launch form offers the local worker only.
RAY_ADDRESS = check_ray_address("RAY_ADDRESS", env_str("RAY_ADDRESS"))
# The Python on the cluster's nodes that has R1 Studio's `pipeline` package installed.
R1STUDIO_RAY_PYTHON = env_str("R1STUDIO_RAY_PYTHON", "python")
# Where run folders are on the cluster's nodes (shared storage); unset: the same path as here.
R1STUDIO_RAY_RUNS_DIR = env_str("R1STUDIO_RAY_RUNS_DIR")
# GPUs a stage's Ray job asks for unless its launch says otherwise; 0 for CPU-only clusters.
R1STUDIO_RAY_GPUS = env_int("R1STUDIO_RAY_GPUS", 1, minimum=0)
# The studio as the cluster's nodes reach it: Ray jobs send their events there (HTTP ingest).
R1STUDIO_RAY_STUDIO_URL = env_str(
    "R1STUDIO_RAY_STUDIO_URL", f"http://127.0.0.1:{env_int('PORT', 8000, minimum=1)}"
).rstrip("/")
# Dataset imports: the largest file (or HF save_to_disk folder) an import accepts, in bytes.
R1STUDIO_MAX_IMPORT_BYTES = env_int("R1STUDIO_MAX_IMPORT_BYTES", 2 * 1024**3, minimum=1)
# pyarrow's default allocator on Linux (mimalloc) asks for transparent huge pages, which the
# kernel zeroes and compacts on first touch: ~5 s of system time per GB an import or a curation
# reads. jemalloc does not. pyarrow reads the variable when first imported, after this.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

# --- auth -----------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Sign-in throttling (django-axes): after R1STUDIO_LOGIN_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is locked out for R1STUDIO_LOGIN_COOLOFF_MINUTES, even
# with the right password. API tokens do not go through Django's authenticate() and are not
# throttled here. Behind a proxy the address is the one uvicorn reports (its --proxy-headers).
AUTHENTICATION_BACKENDS = [
    "r1studio.core.auth_backends.SignInThrottle",  # first: refuses a locked-out pair
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("R1STUDIO_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("R1STUDIO_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The cool-off runs from the lockout; attempts while locked out do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "r1studio.core.views.login_locked_out"
AXES_VERBOSE = False  # no banner on every manage.py command; failures are still logged

# --- HTTPS and security headers -------------------------------------------------------------
# SESSION_COOKIE_SECURE=true means the studio is served over HTTPS only: plain HTTP is then
# redirected (except /healthz, which load balancers probe over HTTP) and browsers are told to
# use HTTPS for a year (HSTS). Behind a TLS-terminating proxy, SECURE_PROXY_SSL_HEADER names the
# header the proxy sets (`X-Forwarded-Proto: https`), unless uvicorn already trusts that proxy.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SESSION_COOKIE_SECURE)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_PROXY_SSL_HEADER = env_header("SECURE_PROXY_SSL_HEADER")
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if SESSION_COOKIE_SECURE else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload puts the domain on a list shipped inside browsers, hard to undo; only the
    # domain's owner can decide that (SECURE_HSTS_PRELOAD=true), so it is not a default.
    "security.W021",
]

# Content-Security-Policy (django-csp 4): only our own scripts, styles, images and requests.
# No inline scripts or event handlers anywhere (behaviour lives in static/js/); chart data
# travels in <script type="application/json"> blocks, which are data, not scripts.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # Plotly draws its mode-bar icons and exports as data: URLs
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    },
}

# --- i18n, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Served by Django's ASGIStaticFilesHandler straight from these folders (see r1studio/asgi.py).
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# `{% static %}` URLs carry the file's content hash (`?v=`): served with a year-long cache and
# gzip by r1studio.core.static, still with no collectstatic step.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "r1studio.core.static.VersionedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        "permission_denied_one_line": {"()": "r1studio.core.log_filters.PermissionDeniedOneLine"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # A 403 is a role check saying no, not an error: one line, no traceback.
        "django.request": {"filters": ["permission_denied_one_line"]},
        "django.security": {"filters": ["permission_denied_one_line"]},
    },
}
