"""Studio settings, read from the environment (see README "Configuration").

DATABASE_URL and REDIS_URL are required here; entry points fill them in from the embedded
servers (studio/embedded.py) when they are unset.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from studio import queues
from studio.embedded import local_secret_key, var_dir
from studio.env import (
    check_redis_url,
    database_from_url,
    env_bool,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_str,
    s3_options,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of the embedded default (PostgreSQL, Redis, media, models): STUDIO_VAR_DIR.
VAR_DIR = var_dir()

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-development-key-only-for-debug"
    elif env_bool("STUDIO_EMBEDDED"):
        # The embedded default on one machine: a random key kept beside its data (0600).
        SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")
    else:
        raise ImproperlyConfigured("SECRET_KEY: must be set when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

_database_url = env_str("DATABASE_URL")
if not _database_url:
    raise ImproperlyConfigured(
        "DATABASE_URL: not set. Start Studio through manage.py (which provides the embedded "
        "PostgreSQL) or point DATABASE_URL at a PostgreSQL server."
    )
DATABASES = {"default": database_from_url("DATABASE_URL", _database_url)}

_redis_url = env_str("REDIS_URL")
if not _redis_url:
    raise ImproperlyConfigured(
        "REDIS_URL: not set. Start Studio through manage.py (which provides the embedded "
        "Redis) or point REDIS_URL at a Redis server."
    )
REDIS_URL = check_redis_url("REDIS_URL", _redis_url)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_rq",
    "django_filters",
    "django_htmx",
    "template_partials",
    # API v1 (studio/api); installed so its docs page uses the bundled Swagger UI, not a CDN.
    "ninja",
    "studio",
    "generation",
    "review",
    "catalogue",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "studio.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After sessions, auth and messages: the 405 page is drawn with base.html and its nav.
    "studio.middleware.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

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
                "studio.roles.roles_context",
                "generation.context_processors.budget_notices_context",
            ],
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins allowed per client IP and per username in a window, then refused (429) until
# it ends; each failed or refused attempt is a studio.models.LoginAttempt row (studio.login).
STUDIO_LOGIN_LIMIT = env_int("STUDIO_LOGIN_LIMIT", 5, minimum=1)
STUDIO_LOGIN_WINDOW_SECONDS = env_int("STUDIO_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=10)
# Reverse proxies in front of the web server that append to X-Forwarded-For (0: none; the
# client is REMOTE_ADDR). With 1, the client is the last address the proxy appended.
STUDIO_PROXY_COUNT = env_int("STUDIO_PROXY_COUNT", 0, minimum=0)
SESSION_COOKIE_AGE = env_int("STUDIO_SESSION_SECONDS", 12 * 3600, minimum=60)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generation:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STUDIO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Images are served through a login-protected view (catalogue:media), never as public files.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("STUDIO_MEDIA_ROOT", str(VAR_DIR / "media"))).resolve()
_storage_backend = env_str("STUDIO_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
_s3_backend = "storages.backends.s3.S3Storage"
# Shared storage for web and workers on several hosts: S3 or an S3-compatible server (MinIO)
# when STUDIO_S3_BUCKET is set; files are private and downloads get short-lived signed URLs
# (catalogue.delivery.files). Static files stay with whitenoise.
_s3_bucket = (env_str("STUDIO_S3_BUCKET", "") or "").strip()
if _s3_bucket or _storage_backend == _s3_backend:
    _default_storage = {"BACKEND": _s3_backend, "OPTIONS": s3_options(_s3_bucket)}
else:
    _default_storage = {"BACKEND": _storage_backend}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (README "Security"; `manage.py check --deploy` is clean with STUDIO_TLS on) ---
# Served over https (directly, or behind a proxy gunicorn trusts for X-Forwarded-Proto):
# HSTS, a redirect from http, and cookies sent over https only. SECURE_COOKIES=true (the older
# name) turns on only the secure cookies.
STUDIO_TLS = env_bool("STUDIO_TLS", default=False)
SESSION_COOKIE_SECURE = STUDIO_TLS or env_bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = STUDIO_TLS and env_bool("STUDIO_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
SECURE_HSTS_SECONDS = (
    env_int("STUDIO_HSTS_SECONDS", 365 * 24 * 3600, minimum=0) if STUDIO_TLS else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("STUDIO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("STUDIO_HSTS_PRELOAD", default=False)
# Joining the browsers' preload list is the domain owner's decision, not a default.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# /metrics (studio.metrics): a Prometheus scraper sends "Authorization: Bearer <token>";
# staff users may also open it in the browser. Empty: staff only.
STUDIO_METRICS_TOKEN = env_str("STUDIO_METRICS_TOKEN", "") or ""
# gunicorn processes `manage.py up` starts when DEBUG is off (docker: the same variable).
STUDIO_WEB_WORKERS = env_int("STUDIO_WEB_WORKERS", 2, minimum=1)
# Threads per gunicorn process (the gthread worker): a request waiting on PostgreSQL or Redis
# leaves the core to another, and clients keep their connections alive.
STUDIO_WEB_THREADS = env_int("STUDIO_WEB_THREADS", 4, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("STUDIO_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# --- Work queues -------------------------------------------------------------------------
# Read once at start-up; studio.queues looks the timeouts up by name when it enqueues a job.
JOB_TIMEOUT_GENERATION = env_int("STUDIO_GENERATION_JOB_TIMEOUT", 1800, minimum=10)
JOB_TIMEOUT_QUALITY = env_int("STUDIO_QUALITY_JOB_TIMEOUT", 600, minimum=10)
JOB_TIMEOUT_DELIVERY = env_int("STUDIO_DELIVERY_JOB_TIMEOUT", 600, minimum=10)
# Exports (catalogue.delivery.exports): one job builds a whole zip, so it gets longer; its
# lease is renewed after every chunk, and a lease that ran out means the worker died.
JOB_TIMEOUT_EXPORT = env_int("STUDIO_EXPORT_JOB_TIMEOUT", 3600, minimum=10)
STUDIO_EXPORT_LEASE_SECONDS = env_int("STUDIO_EXPORT_LEASE_SECONDS", 300, minimum=10)
STUDIO_EXPORT_DAYS = env_int("STUDIO_EXPORT_DAYS", 7, minimum=1)
RQ_QUEUES = {
    queues.GENERATION: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": JOB_TIMEOUT_GENERATION},
    queues.QUALITY: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": JOB_TIMEOUT_QUALITY},
    queues.DELIVERY: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": JOB_TIMEOUT_DELIVERY},
}
# SimpleWorker runs jobs in the worker process: the model stays loaded between jobs, and
# CUDA is never used in a forked child (DESIGN.md). Jobs always carry a job_timeout.
# studio.queues.enqueue waits for the commit itself; django-rq must not defer it again.
RQ = {"COMMIT_MODE": "auto", "WORKER_CLASS": "rq.worker.SimpleWorker"}
RQ_SHOW_ADMIN_LINK = True

# --- Generation ---------------------------------------------------------------------------
STUDIO_MAX_CSV_ROWS = env_int("STUDIO_MAX_CSV_ROWS", 5000, minimum=1)
STUDIO_MAX_VARIATIONS = env_int("STUDIO_MAX_VARIATIONS", 100, minimum=1)
# Variation matrices (generation.matrix): images one CSV row may make (matrix cells × output
# sizes) and images one campaign may make in all.
STUDIO_MAX_MATRIX_ITEMS_PER_ROW = env_int("STUDIO_MAX_MATRIX_ITEMS_PER_ROW", 1000, minimum=1)
STUDIO_MAX_CAMPAIGN_ITEMS = env_int("STUDIO_MAX_CAMPAIGN_ITEMS", 100000, minimum=1)
STUDIO_BATCH_SIZE = env_int("STUDIO_BATCH_SIZE", 4, minimum=1)
STUDIO_ITEM_LEASE_SECONDS = env_int("STUDIO_ITEM_LEASE_SECONDS", 3600, minimum=10)
# The reconciler leaves queued items younger than this alone (their job is being enqueued).
STUDIO_RECONCILE_GRACE_SECONDS = env_int("STUDIO_RECONCILE_GRACE_SECONDS", 60, minimum=1)
STUDIO_MAX_ATTEMPTS = env_int("STUDIO_MAX_ATTEMPTS", 3, minimum=1)
STUDIO_TORCH_THREADS = env_int("STUDIO_TORCH_THREADS", 1, minimum=1)
STUDIO_DEVICE = env_str("STUDIO_DEVICE", "auto")
# On: batched images equal images made alone, bit for bit (generation.backends.batch_invariant),
# at the cost of batching speed. Off (default): kernels batch across images; an image then
# differs from its batch-of-one twin by at most a level in rare pixels and reproduces exactly
# at its recorded batch size.
STUDIO_BATCH_INVARIANT = env_bool("STUDIO_BATCH_INVARIANT", default=False)
STUDIO_GPU_HOURLY_RATE = env_decimal("STUDIO_GPU_HOURLY_RATE", "1.20")
STUDIO_MODELS_DIR = Path(env_str("STUDIO_MODELS_DIR", str(VAR_DIR / "models"))).resolve()

# --- Generation backends -----------------------------------------------------------------
# Images per pipeline call, per backend (Stability makes one image per call).
STUDIO_BATCH_SIZE_DIFFUSERS = env_int("STUDIO_BATCH_SIZE_DIFFUSERS", STUDIO_BATCH_SIZE, minimum=1)
STUDIO_BATCH_SIZE_A1111 = env_int("STUDIO_BATCH_SIZE_A1111", STUDIO_BATCH_SIZE, minimum=1)
STUDIO_A1111_URL = env_str("STUDIO_A1111_URL", "")
STUDIO_A1111_USER = env_str("STUDIO_A1111_USER", "")
STUDIO_A1111_PASSWORD = env_str("STUDIO_A1111_PASSWORD", "")
STUDIO_A1111_IMAGE_RATE = env_decimal("STUDIO_A1111_IMAGE_RATE", "0")
STABILITY_API_KEY = env_str("STABILITY_API_KEY", "")
STUDIO_STABILITY_URL = env_str("STUDIO_STABILITY_URL", "https://api.stability.ai")
STUDIO_STABILITY_CREDIT_PRICE = env_decimal("STUDIO_STABILITY_CREDIT_PRICE", "0.01")
# Remote calls: retries for timeouts, connection errors, 429 and 5xx, exponential backoff.
STUDIO_HTTP_TIMEOUT_SECONDS = env_float("STUDIO_HTTP_TIMEOUT_SECONDS", 300.0)
STUDIO_HTTP_RETRIES = env_int("STUDIO_HTTP_RETRIES", 3, minimum=0)
STUDIO_HTTP_BACKOFF_SECONDS = env_float("STUDIO_HTTP_BACKOFF_SECONDS", 2.0)

# --- Quality ------------------------------------------------------------------------------
STUDIO_QUALITY_APPROVE_AT = env_float("STUDIO_QUALITY_APPROVE_AT", 0.70)
STUDIO_QUALITY_REJECT_BELOW = env_float("STUDIO_QUALITY_REJECT_BELOW", 0.40)
STUDIO_REVIEW_LEASE_SECONDS = env_int("STUDIO_REVIEW_LEASE_SECONDS", 600, minimum=10)
if not 0 <= STUDIO_QUALITY_REJECT_BELOW <= STUDIO_QUALITY_APPROVE_AT <= 1:
    raise ImproperlyConfigured(
        "STUDIO_QUALITY_REJECT_BELOW / STUDIO_QUALITY_APPROVE_AT: need "
        "0 <= reject_below <= approve_at <= 1"
    )

# --- Quality (CLIP, style) -------------------------------------------------------------------
from studio.env import env_list as _quality_env_list  # noqa: E402

# Default weights of a new campaign's policy; a score a worker does not compute is skipped.
STUDIO_QUALITY_WEIGHTS = {
    "sharpness": 1.0,
    "exposure": 1.0,
    "contrast": 1.0,
    "blockiness": 1.0,
    "saturation": 1.0,
    "noise": 1.0,
    "banding": 1.0,
    "framing": 1.0,
    "clip_match": 1.0,
    "clip_unwanted": 1.0,
    "style": 1.0,
    "uniqueness": 1.0,
}
STUDIO_QUALITY_UNWANTED_CONCEPTS = _quality_env_list(
    "STUDIO_QUALITY_UNWANTED_CONCEPTS",
    ["text", "watermark", "logo", "extra fingers", "deformed hands", "blurry"],
)
# Zero-shot tags CLIP may give an image (a campaign's policy can add its own words).
STUDIO_CLIP_TAGS = _quality_env_list(
    "STUDIO_CLIP_TAGS",
    [
        "product photo",
        "lifestyle photo",
        "flat lay",
        "close-up",
        "outdoor",
        "indoor",
        "person",
        "illustration",
        "3d render",
        "pattern",
        "landscape",
        "food",
    ],
)
# open_clip model name (e.g. ViT-B-32) and pretrained tag or local checkpoint file; empty
# model name = CLIP scoring off (recorded as a skipped reason). STUDIO_CLIP_CONFIG: a JSON
# model config registered with open_clip first (for custom/tiny models).
STUDIO_CLIP_MODEL = env_str("STUDIO_CLIP_MODEL", "")
STUDIO_CLIP_PRETRAINED = env_str("STUDIO_CLIP_PRETRAINED", "")
STUDIO_CLIP_CONFIG = env_str("STUDIO_CLIP_CONFIG", "")
STUDIO_CLIP_BATCH_SIZE = env_int("STUDIO_CLIP_BATCH_SIZE", 16, minimum=1)
STUDIO_CLIP_THREADS = env_int("STUDIO_CLIP_THREADS", 1, minimum=1)
# Cosine similarity of image and prompt mapped to a 0-1 score between these two
# (ViT-B-32: unrelated text ~0.15, a fitting prompt ~0.30).
STUDIO_CLIP_MATCH_LOW = env_float("STUDIO_CLIP_MATCH_LOW", 0.15)
STUDIO_CLIP_MATCH_HIGH = env_float("STUDIO_CLIP_MATCH_HIGH", 0.30)
# Perceptual-hash (64-bit) Hamming distances: style to references, near-duplicates.
STUDIO_STYLE_DISTANCE_OK = env_int("STUDIO_STYLE_DISTANCE_OK", 14, minimum=0)
STUDIO_STYLE_DISTANCE_BAD = env_int("STUDIO_STYLE_DISTANCE_BAD", 30, minimum=1)
STUDIO_NEAR_DUPLICATE_DISTANCE = env_int("STUDIO_NEAR_DUPLICATE_DISTANCE", 4, minimum=0)
# Content screening with NudeNet's detector (review.quality.content). Empty model path: the
# 320n.onnx bundled in the installed nudenet wheel; its sha256 is checked at start-up
# (`manage.py check`) and when a worker loads it. Campaigns of the templates listed in
# STUDIO_CONTENT_PERSON_TEMPLATES send any person to review by default (packshots).
STUDIO_CONTENT_MODEL = env_str("STUDIO_CONTENT_MODEL", "")
STUDIO_CONTENT_MODEL_SHA256 = env_str(
    "STUDIO_CONTENT_MODEL_SHA256",
    "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
)
STUDIO_CONTENT_THREADS = env_int("STUDIO_CONTENT_THREADS", 1, minimum=1)
STUDIO_CONTENT_PERSON_TEMPLATES = _quality_env_list(
    "STUDIO_CONTENT_PERSON_TEMPLATES", ["product-photo"]
)
# A reviewer may undo their own decision for this long (and an approval's asset is withdrawn).
STUDIO_REVIEW_UNDO_SECONDS = env_int("STUDIO_REVIEW_UNDO_SECONDS", 600, minimum=0)
STUDIO_REVIEW_GRID_SIZE = env_int("STUDIO_REVIEW_GRID_SIZE", 12, minimum=1)

# --- Provenance in delivered files (catalogue.delivery.metadata / .signing) ---------------
# photoshop:Credit in every file's XMP, and the organisation named in the local certificate.
STUDIO_CREDIT = env_str("STUDIO_CREDIT", "Studio") or "Studio"
# C2PA Content Credentials. The certificate chain (signer first) and its key are PEM file
# paths (e.g. /run/secrets/...); checked at start-up (catalogue.checks). Unset: a local CA
# and signer made once under STUDIO_C2PA_DIR, 0600. No TSA URL: signed offline.
STUDIO_C2PA = env_bool("STUDIO_C2PA", default=True)
STUDIO_C2PA_CERT_FILE = (env_str("STUDIO_C2PA_CERT_FILE", "") or "").strip()
STUDIO_C2PA_KEY_FILE = (env_str("STUDIO_C2PA_KEY_FILE", "") or "").strip()
# Or the PEM text itself in STUDIO_C2PA_CERT / STUDIO_C2PA_KEY (a secret store's variables).
STUDIO_C2PA_CERT = "" if STUDIO_C2PA_CERT_FILE else (env_str("STUDIO_C2PA_CERT", "") or "")
STUDIO_C2PA_KEY = "" if STUDIO_C2PA_KEY_FILE else (env_str("STUDIO_C2PA_KEY", "") or "")
STUDIO_C2PA_TSA_URL = (env_str("STUDIO_C2PA_TSA_URL", "") or "").strip()
STUDIO_C2PA_DIR = Path(env_str("STUDIO_C2PA_DIR", str(VAR_DIR / "c2pa"))).resolve()

# --- Costs and budgets ----------------------------------------------------------------------
# Every cost is a ledger entry (generation.models.CostEntry) in this one currency (ISO 4217).
STUDIO_CURRENCY = (env_str("STUDIO_CURRENCY", "GBP") or "").strip().upper()
if len(STUDIO_CURRENCY) != 3 or not STUDIO_CURRENCY.isalpha() or not STUDIO_CURRENCY.isascii():
    raise ImproperlyConfigured(
        f"STUDIO_CURRENCY: expected a three-letter ISO 4217 code such as GBP, got "
        f"{STUDIO_CURRENCY!r}"
    )
STUDIO_CPU_HOURLY_RATE = env_decimal("STUDIO_CPU_HOURLY_RATE", "0.10")
# Per GiB (2^30 bytes) stored for a month; an asset published mid-month pays pro rata.
STUDIO_STORAGE_GB_MONTH_RATE = env_decimal("STUDIO_STORAGE_GB_MONTH_RATE", "0.02")
STUDIO_REVIEWER_HOURLY_RATE = env_decimal("STUDIO_REVIEWER_HOURLY_RATE", "25.00")
# Amounts a budget may be set to: positive, two decimal places, at most this.
STUDIO_BUDGET_MAX = env_decimal("STUDIO_BUDGET_MAX", "1000000")
for _name in (
    "STUDIO_GPU_HOURLY_RATE",
    "STUDIO_CPU_HOURLY_RATE",
    "STUDIO_A1111_IMAGE_RATE",
    "STUDIO_STABILITY_CREDIT_PRICE",
    "STUDIO_STORAGE_GB_MONTH_RATE",
    "STUDIO_REVIEWER_HOURLY_RATE",
    "STUDIO_BUDGET_MAX",
):
    _value = globals()[_name]
    if not _value.is_finite() or _value < 0 or (_name == "STUDIO_BUDGET_MAX" and _value <= 0):
        _least = "greater than 0" if _name == "STUDIO_BUDGET_MAX" else "at least 0"
        raise ImproperlyConfigured(f"{_name}: must be a number {_least}, got {_value}")
# An estimate without history: GPU seconds per sampling step at 512x512 (scaled by pixels).
STUDIO_ESTIMATE_SECONDS_PER_STEP = env_float("STUDIO_ESTIMATE_SECONDS_PER_STEP", 0.03)
if not 0 < STUDIO_ESTIMATE_SECONDS_PER_STEP < 3600:
    raise ImproperlyConfigured(
        f"STUDIO_ESTIMATE_SECONDS_PER_STEP: must be between 0 and 3600, got "
        f"{STUDIO_ESTIMATE_SECONDS_PER_STEP}"
    )
# How many of a recipe's latest images its expected cost and speed are taken from.
STUDIO_ESTIMATE_HISTORY = env_int("STUDIO_ESTIMATE_HISTORY", 50, minimum=1)
# Budget alerts (80 % and 100 %) go to every manager and admin with an e-mail address, and
# to these addresses.
STUDIO_BUDGET_ALERT_EMAILS = env_list("STUDIO_BUDGET_ALERT_EMAILS", [])

# Self-hosting or API (the managers' report): an own GPU's price, paid off over so many
# months, its power draw while generating and the price of power; an API's price per image,
# per base model name (STUDIO_API_IMAGE_PRICES="sdxl-base=0.04,sd15=0.02"), else the default.
STUDIO_SELFHOST_GPU_PRICE = env_decimal("STUDIO_SELFHOST_GPU_PRICE", "1800")
STUDIO_SELFHOST_AMORTISATION_MONTHS = env_int("STUDIO_SELFHOST_AMORTISATION_MONTHS", 24, minimum=1)
STUDIO_SELFHOST_POWER_WATTS = env_decimal("STUDIO_SELFHOST_POWER_WATTS", "450")
STUDIO_SELFHOST_POWER_PRICE_KWH = env_decimal("STUDIO_SELFHOST_POWER_PRICE_KWH", "0.25")
# Seconds per image on the GPU when the ledger has no GPU time yet (a CPU-only install).
STUDIO_SELFHOST_SECONDS_PER_IMAGE = env_float("STUDIO_SELFHOST_SECONDS_PER_IMAGE", 4.0)
STUDIO_API_IMAGE_PRICE = env_decimal("STUDIO_API_IMAGE_PRICE", "0.04")
for _name in (
    "STUDIO_SELFHOST_GPU_PRICE",
    "STUDIO_SELFHOST_POWER_WATTS",
    "STUDIO_SELFHOST_POWER_PRICE_KWH",
    "STUDIO_API_IMAGE_PRICE",
):
    if not globals()[_name].is_finite() or globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name}: must be a number at least 0, got {globals()[_name]}")
if not 0 < STUDIO_SELFHOST_SECONDS_PER_IMAGE < 3600:
    raise ImproperlyConfigured(
        "STUDIO_SELFHOST_SECONDS_PER_IMAGE: must be between 0 and 3600, got "
        f"{STUDIO_SELFHOST_SECONDS_PER_IMAGE}"
    )


def _prices(name: str) -> dict[str, Decimal]:
    prices = {}
    for part in (env_str(name, "") or "").split(","):
        if not part.strip():
            continue
        model, sep, value = part.partition("=")
        try:
            price = Decimal(value.strip()) if sep and model.strip() else None
        except ArithmeticError:
            price = None
        if price is None or not price.is_finite() or price < 0:
            raise ImproperlyConfigured(
                f"{name}: expected model=price pairs separated by commas, e.g. "
                f"'sdxl-base=0.04,sd15=0.02', got {part.strip()!r}"
            )
        prices[model.strip()] = price
    return prices


STUDIO_API_IMAGE_PRICES = _prices("STUDIO_API_IMAGE_PRICES")

# --- E-mail ---------------------------------------------------------------------------------
# Without EMAIL_HOST (the embedded default) mail is written to the console.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "studio@localhost")

# --- API and webhooks -----------------------------------------------------------------------
# Requests per minute per API token (per user for the browser session); over it: 429.
STUDIO_API_RATE_LIMIT = env_int("STUDIO_API_RATE_LIMIT", 600, minimum=1)
# A request body larger than this is refused (413) before it is read.
STUDIO_API_MAX_BODY_BYTES = env_int(
    "STUDIO_API_MAX_BODY_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE, minimum=1024
)
# Webhooks to loopback, private, link-local and reserved addresses are refused unless on.
STUDIO_WEBHOOK_ALLOW_PRIVATE = env_bool("STUDIO_WEBHOOK_ALLOW_PRIVATE", default=False)
STUDIO_WEBHOOK_TIMEOUT_SECONDS = env_int("STUDIO_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
NINJA_PAGINATION_MAX_LIMIT = 200

STUDIO_LOG_FORMAT = (env_str("STUDIO_LOG_FORMAT", "plain") or "plain").strip().lower()
if STUDIO_LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(
        f"STUDIO_LOG_FORMAT: expected plain or json, got {STUDIO_LOG_FORMAT!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        # STUDIO_LOG_FORMAT=json: one JSON object per line, with campaign/item ids when known.
        "json": {"()": "studio.logs.JsonFormatter"},
    },
    "filters": {
        "quiet_403": {
            "()": "django.utils.log.CallbackFilter",
            "callback": "ext://studio.middleware.quiet_permission_denied",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": STUDIO_LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's defaults give "django" its own console handler (with DEBUG) on top of the
        # root one, so every django.* line was written twice; here it only propagates.
        "django": {"handlers": [], "level": "INFO"},
        # A 403 is one WARNING line without a traceback (studio.middleware).
        "django.request": {"filters": ["quiet_403"]},
        "django.db.backends": {"level": "WARNING"},
    },
}
