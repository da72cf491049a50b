"""Settings for Dienstweg: one file, configured only through environment variables.

With nothing set it runs embedded (SQLite in var/, in-memory channel layer). Every
variable is listed with its embedded and production value in deploy/dienstweg.env.example.
"""

import base64
import binascii
import hashlib
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from dienstweg import production_secrets

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the file named by NAME_FILE (for secrets mounted as files)."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return default


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name) or default).split(",") if item.strip()]


DEBUG = env_bool("DIENSTWEG_DEBUG", False)
DATA_DIR = Path(env("DIENSTWEG_DATA_DIR") or BASE_DIR / "var")


def secret(name: str) -> str:
    """A secret from the environment; in DEBUG a generated one kept in var/dev-secrets/."""
    value = env(name)
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} (or {name}_FILE) is not set. Production refuses to start without it; "
            "for development set DIENSTWEG_DEBUG=true to use generated secrets."
        )
    path = DATA_DIR / "dev-secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def parse_master_keys(value: str) -> dict[int, bytes]:
    """DIENSTWEG_MASTER_KEYS: "version:base64key" pairs, comma-separated, e.g. "1:…,2:…".
    The highest version wraps new data keys; older ones stay until rotate_master_key ran."""
    keys = {}
    for position, item in enumerate(value.split(","), start=1):
        version, _sep, encoded = item.strip().partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
            keys[int(version)] = key
        except (ValueError, binascii.Error):
            # Name the position only: the entry itself is secret.
            raise ImproperlyConfigured(
                f"DIENSTWEG_MASTER_KEYS: entry {position} is not 'version:base64key'"
            ) from None
        if len(key) != 32:
            raise ImproperlyConfigured(f"DIENSTWEG_MASTER_KEYS: key {version} is not 32 bytes")
    return keys


def reads_no_secret(argv: list[str]) -> bool:
    """Whether this process reads no secret: `manage.py generate_secrets` and
    `manage.py audit_public_key --generate` print fresh ones and must run before any
    exists; `manage.py makemigrations` only compares the models with the migrations (a
    checkout's `makemigrations --check` needs no production secrets)."""
    command, options = argv[1:2], argv[2:]
    return command in (["generate_secrets"], ["makemigrations"]) or (
        command == ["audit_public_key"] and "--generate" in options
    )


# A weak secret is refused like a missing one (dienstweg/production_secrets.py); with DEBUG
# the weaknesses of the secrets that are set are only reported by `check --deploy`.
SECRET_WEAKNESSES: list[production_secrets.Weakness] = []
READS_NO_SECRET = reads_no_secret(sys.argv)
if READS_NO_SECRET:
    # Such a process reads no secret: empty ones make any use of them fail loudly.
    SECRET_KEY = ""
    VAULT_MASTER_KEYS: dict[int, bytes] = {}
    VAULT_BLIND_INDEX_KEY = b""
    BACKUP_CODE_KEY = ""
    AUDIT_SIGNING_KEY = ""
else:
    SECRET_KEY = secret("DIENSTWEG_SECRET_KEY")
    # Blind indexes (duplicate check on name and birth date) have a key of their own.
    VAULT_BLIND_INDEX_KEY = secret("DIENSTWEG_BLIND_INDEX_KEY").encode()
    # Keyed hash for backup codes: a stolen database alone does not allow guessing them.
    BACKUP_CODE_KEY = secret("DIENSTWEG_BACKUP_CODE_KEY")
    # Ed25519 key that signs the audit seals: base64 of the raw 32 bytes; any other value
    # (the generated dev secret) is hashed into one with SHA-256 (audit/signing.py).
    AUDIT_SIGNING_KEY = secret("DIENSTWEG_AUDIT_SIGNING_KEY")
    master_keys = secret("DIENSTWEG_MASTER_KEYS")
    SECRET_WEAKNESSES = production_secrets.weaknesses(
        {name: value for name in production_secrets.NAMES if (value := env(name))},
        examples=production_secrets.example_values(BASE_DIR / production_secrets.EXAMPLE),
    )
    if SECRET_WEAKNESSES and not DEBUG:
        # The messages name the variable and the rule, never the value.
        raise ImproperlyConfigured(
            "Production refuses weak secrets; `manage.py generate_secrets` prints a fresh "
            "set.\n" + "\n".join(f"- {weakness.message}" for weakness in SECRET_WEAKNESSES)
        )
    # Envelope encryption: versioned master keys wrap the data keys (dienstweg/vault.py).
    if env("DIENSTWEG_MASTER_KEYS") or not DEBUG:
        VAULT_MASTER_KEYS = parse_master_keys(master_keys)
    else:
        # Development: one master key derived from a secret generated in var/.
        VAULT_MASTER_KEYS = {1: hashlib.sha256(master_keys.encode()).digest()}

ALLOWED_HOSTS = env_list("DIENSTWEG_ALLOWED_HOSTS", "127.0.0.1,localhost")
if DEBUG:
    ALLOWED_HOSTS += ["testserver"]
CSRF_TRUSTED_ORIGINS = env_list("DIENSTWEG_CSRF_TRUSTED_ORIGINS")
# Addresses of reverse proxies whose X-Forwarded-For we believe; nobody else's.
TRUSTED_PROXIES = env_list("DIENSTWEG_TRUSTED_PROXIES")

INSTALLED_APPS = [
    "daphne",
    "dienstweg.apps.DienstwegAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "channels",
    "guardian",
    "dienstweg",
    "audit",
    "referrals",
    "applications",
    "messaging",
    "conferences",
    # The DPO console sits on top of every app: it reads across them (STYLE.md).
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "dienstweg.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Before the session gates: an expired session is told so through a message.
    "django.contrib.messages.middleware.MessageMiddleware",
    "dienstweg.middleware.SessionLifetimeMiddleware",
    "dienstweg.middleware.SecondFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dienstweg.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "dienstweg.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dienstweg.context_processors.unread_notifications",
                "config.navigation.main_navigation",
            ],
        },
    },
]

DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'dienstweg.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests on a file, not the shared in-memory database: there a socket's thread reading
    # while the test writes fails at once ("table is locked") instead of waiting its turn.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    # A pool per process: Daphne runs every page and every WebSocket frame's database work
    # on threads that would otherwise open a new connection each time (2 ms and two extra
    # commits apiece; bench/step4.py).
    DATABASES["default"]["OPTIONS"] = {
        "pool": {"min_size": 2, "max_size": 10, "timeout": 10},
        # What runs under dienstweg.compiled.planned_once (prepared rules, pages that read
        # by id) is prepared at its first run. Only that: Django's own cursors bind on the
        # client and never prepare.
        "prepare_threshold": 0,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
# Parallel test workers (pytest-xdist: `make test`) share this machine's Redis as separate
# installations would: each its own channel prefix (Pub/Sub is server-wide) and its own
# database for the cache, which tests empty. Outside the tests both stay as configured.
TEST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
CACHE_URL = REDIS_URL
if REDIS_URL and TEST_WORKER:
    database = 1 + int(TEST_WORKER.removeprefix("gw"))
    CACHE_URL = urlsplit(REDIS_URL)._replace(path=f"/{database}").geturl()
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's Pub/Sub layer, sending an event to many groups at once.
            "BACKEND": "config.channel_layer.PubSubLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # Redis holds message bodies in transit: encrypted (Fernet, from SECRET_KEY).
                "symmetric_encryption_keys": [SECRET_KEY],
                # Pub/Sub channels are server-wide: an installation of its own (its own
                # secret) must never hear another's events on a shared Redis.
                "prefix": "dienstweg-"
                + hashlib.sha256(SECRET_KEY.encode()).hexdigest()[:12]
                + TEST_WORKER,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds only counters (look-up throttling); shared through Redis in production so
# that every Daphne process counts the same attempts.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Accounts, second factor, lockout
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Object permissions (django-guardian) exist only for staff: no anonymous user is created.
ANONYMOUS_USER_NAME = None
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

OTP_TOTP_ISSUER = "Dienstweg"
OTP_TOTP_THROTTLE_FACTOR = 1  # waits of 1, 2, 4, 8 … seconds after wrong codes
BACKUP_CODE_COUNT = 10
# A new account (or one whose second factor was reset) starts with a single-use link, valid
# this many hours, where the person sets her own password and enrols her second factor.
ENROLMENT_LINK_HOURS = env_int("DIENSTWEG_ENROLMENT_LINK_HOURS", 72)
# Renewing one's backup codes or second factor needs password and code again, this recently.
REAUTHENTICATION_MINUTES = env_int("DIENSTWEG_REAUTHENTICATION_MINUTES", 5)

# The login throttle (dienstweg/security.py): wrong passwords count per pair of account AND
# source address, never either alone (ASVS 5.0 V6.3, NIST SP 800-63B 5.2.2), so a lockout
# cannot be aimed: failures from one address do not lock the colleagues behind the same office
# address, and failures from elsewhere do not lock a known colleague out at her own desk.
# The FAILURES-th wrong password in a row makes the pair wait FIRST_MINUTES, each further one
# twice as long, up to MINUTES; a correct password forgives the pair, and a pair quiet for
# FORGET_HOURS starts afresh. With the defaults one pair gets at most 33 guesses in a day (24
# a day after that), and 100 in a row (NIST's ceiling) take more than three and a half days.
LOGIN_LOCKOUT_FAILURES = max(1, env_int("DIENSTWEG_LOCKOUT_FAILURES", 5))
LOGIN_LOCKOUT_FIRST_DELAY = timedelta(minutes=max(1, env_int("DIENSTWEG_LOCKOUT_FIRST_MINUTES", 1)))
LOGIN_LOCKOUT_MAX_DELAY = max(
    LOGIN_LOCKOUT_FIRST_DELAY, timedelta(minutes=env_int("DIENSTWEG_LOCKOUT_MINUTES", 60))
)
LOGIN_LOCKOUT_FORGET_AFTER = max(
    LOGIN_LOCKOUT_MAX_DELAY, timedelta(hours=env_int("DIENSTWEG_LOCKOUT_FORGET_HOURS", 24))
)

# The audit trail takes the client address from the platform, by name: it imports nothing.
AUDIT_CLIENT_IP_CALLABLE = "dienstweg.security.client_ip"
# Each seal's signed head is also appended here, outside the database's write path
# (audit/anchor.py): production points it at a directory of the service's user that the
# database's user cannot write (deploy/systemd: StateDirectory=dienstweg-anchor).
AUDIT_ANCHOR_DIR = Path(env("DIENSTWEG_AUDIT_ANCHOR_DIR") or DATA_DIR / "audit-anchor")
# The erasure register (dienstweg/erasure_register.py): every erased family, signed and
# chained, kept apart from the database so that `restore` can erase again what an older
# backup brings back. Back it up apart from the database and never replace it by a copy.
ERASURE_REGISTER_DIR = Path(env("DIENSTWEG_ERASURE_REGISTER_DIR") or DATA_DIR / "erasure-register")
# Where `manage.py backup` writes by default, and how long it keeps its own backups there.
BACKUP_DIR = Path(env("DIENSTWEG_BACKUP_DIR") or DATA_DIR / "backups")
BACKUP_RETENTION_DAYS = env_int("DIENSTWEG_BACKUP_RETENTION_DAYS", 30)
# A backup holds no data key: they go to a file of their own here, kept for a short time, so
# that an erased family's key is in no copy at all after this many days.
BACKUP_KEYS_DIR = Path(env("DIENSTWEG_BACKUP_KEYS_DIR") or DATA_DIR / "backup-keys")
BACKUP_KEYS_RETENTION_DAYS = env_int("DIENSTWEG_BACKUP_KEYS_RETENTION_DAYS", 7)
# The sealer refuses an event dated more than this before the newest event it has sealed
# (or after its own clock by as much): clocks of several hosts, and transactions that
# record an event and commit a little later, stay within it.
AUDIT_CLOCK_SKEW_SECONDS = env_int("DIENSTWEG_AUDIT_CLOCK_SKEW_SECONDS", 120)

# Sessions: expire after idle time and after an absolute lifetime.
SESSION_ENGINE = "dienstweg.sessions"
SESSION_IDLE_TIMEOUT = timedelta(minutes=env_int("DIENSTWEG_SESSION_IDLE_MINUTES", 30))
SESSION_MAX_LIFETIME = timedelta(hours=env_int("DIENSTWEG_SESSION_MAX_HOURS", 10))
SESSION_COOKIE_AGE = int(SESSION_IDLE_TIMEOUT.total_seconds())
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "dienstweg_session"

# Transport security: on unless explicitly turned off (the embedded default on 127.0.0.1).
HTTPS = env_bool("DIENSTWEG_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# Language: German first, English selectable; time zone Europe/Berlin, stored in UTC.
LANGUAGE_CODE = "de"
LANGUAGES = [("de", _("Deutsch")), ("en", _("Englisch"))]
LOCALE_PATHS = [BASE_DIR / "dienstweg" / "locale", BASE_DIR / "config" / "locale"]
LANGUAGE_COOKIE_NAME = "dienstweg_language"
LANGUAGE_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "Europe/Berlin"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("DIENSTWEG_STATIC_ROOT") or BASE_DIR / "staticfiles")
# KERN, the German administration's design system, as npm installed it from
# package-lock.json (`make assets`): served as static/kern/ (kern.min.css, fonts/).
# Never copied into the repository; collectstatic takes it from here.
STATICFILES_DIRS = [("kern", BASE_DIR / "node_modules" / "@kern-ux" / "native" / "dist")]
# The embedded default serves static files from the ASGI app; production leaves it to nginx.
SERVE_STATIC = env_bool("DIENSTWEG_SERVE_STATIC", True)

DIRECTORY_PAGE_SIZE = 25
# A proposed case or dpo role that nobody confirms within this many days expires
# (manage.py expire_proposals, daily timer); the admin proposes it again if still wanted.
MEMBERSHIP_PROPOSAL_DAYS = env_int("DIENSTWEG_ROLE_PROPOSAL_DAYS", 14)
FAMILY_PAGE_SIZE = 25
FAMILY_HISTORY_PAGE_SIZE = 25
NOTIFICATION_PAGE_SIZE = 25
TEAM_PAGE_SIZE = 25
# The version of the consent form text in use; recorded with every consent.
CONSENT_TEXT_VERSION = env("DIENSTWEG_CONSENT_TEXT_VERSION") or "2026-1"
# Scans of signed consent forms: PDF, JPEG or PNG up to this size.
EVIDENCE_MAX_BYTES = 5 * 1024 * 1024

# Referrals and application tags
REFERRAL_PAGE_SIZE = 25
# A sent referral without an answer after this many days is overdue (escalated to the lead).
REFERRAL_ANSWER_DAYS = env_int("DIENSTWEG_REFERRAL_ANSWER_DAYS", 5)
# Families a project means to reach a year (the Strukturkonferenz report; Gladbeck: 48).
DIENSTWEG_FAMILIES_TARGET = env_int("DIENSTWEG_FAMILIES_TARGET", 48)
# Attachments of referrals: PDF, JPEG or PNG up to this size, at most five per referral.
ATTACHMENT_MAX_BYTES = env_int("DIENSTWEG_ATTACHMENT_MAX_MB", 10) * 1024 * 1024
# Request bodies (config/request_bodies.py, enforced by config.serve before the body is
# read; deploy/nginx/dienstweg.conf keeps the same figures): a multipart POST of a session
# verified by the second factor to a view that takes files (dienstweg.uploads.accepts_uploads)
# may carry five attachments of the largest size plus the form (1 MiB: 5,000-character
# fields in UTF-8); every other request, anonymous ones included, 256 KiB: the longest form,
# a 5,000-character field percent-encoded at up to 12 bytes a character, fits with room.
UPLOAD_REQUEST_MAX_BYTES = 5 * ATTACHMENT_MAX_BYTES + 1024 * 1024
FORM_REQUEST_MAX_BYTES = 256 * 1024
# Uploads stay in memory: Django would otherwise spool a body over FILE_UPLOAD_MAX_MEMORY_SIZE
# (ASGI handler) and each file over it (TemporaryFileUploadHandler) to a plaintext temporary
# file before we encrypt it. The server admits no body larger than this.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_REQUEST_MAX_BYTES
# The fields of a form other than its files (Django's own check, behind the server's).
DATA_UPLOAD_MAX_MEMORY_SIZE = FORM_REQUEST_MAX_BYTES
# Looking up application tags by code: after this many wrong codes within the window the
# account must wait (the codes are unguessable; this keeps anyone from trying).
TAG_LOOKUP_MAX_FAILURES = 10
TAG_LOOKUP_WINDOW_MINUTES = 15

# Messaging
MESSAGE_MAX_CHARS = 4000
# A reader who has not read a thread's new messages after this many minutes is e-mailed
# (once per thread and hour at most; manage.py send_message_notices).
MESSAGE_NOTICE_AFTER_MINUTES = env_int("DIENSTWEG_MESSAGE_NOTICE_MINUTES", 10)
# WebSocket frames: larger ones get an error frame (Daphne itself drops frames over 64 KiB,
# see deploy/systemd and the Makefile); at most WS_RATE_FRAMES per user and window.
WS_MAX_FRAME_CHARS = 16_000
WS_RATE_FRAMES = env_int("DIENSTWEG_WS_RATE_FRAMES", 100)
WS_RATE_WINDOW_SECONDS = 10
# Open sockets (tabs) per user, over all processes; a new one beyond closes her oldest.
WS_MAX_SOCKETS_PER_USER = max(1, env_int("DIENSTWEG_MAX_SOCKETS_PER_USER", 20))

# Data-protection officer's console and retention (privacy, manage.py apply_retention)
AUDIT_CONSOLE_PAGE_SIZE = 50
# Security events (logins, failed logins and second factors, lock-outs, ended sessions) are
# removed after this many days; every other event (reads, transmissions, changes) at the end
# of the Nth calendar year after the one it happened in. Seals, which hold no personal data,
# are kept for good.
AUDIT_SECURITY_RETENTION_DAYS = env_int("DIENSTWEG_AUDIT_SECURITY_RETENTION_DAYS", 90)
AUDIT_ACCESS_RETENTION_YEARS = env_int("DIENSTWEG_AUDIT_ACCESS_RETENTION_YEARS", 1)
# Closed referrals (completed, declined, withdrawn, refused) and the application tags decided
# this many days ago are removed, with their threads; direct threads quiet for as long too.
RETENTION_CLOSED_CASE_DAYS = env_int("DIENSTWEG_RETENTION_CLOSED_CASE_DAYS", 730)
# A family with nothing open (no open referral or tag, no consent still valid) and no activity
# for this many days is erased like an erasure on request, by the retention run.
RETENTION_FAMILY_DAYS = env_int("DIENSTWEG_RETENTION_FAMILY_DAYS", 1095)
# The supervisory authority a family may complain to (GDPR Art. 15(1)(f), 77), named in the
# Art. 15 report: by default North Rhine-Westphalia's, where the network works.
DIENSTWEG_SUPERVISORY_AUTHORITY = env("DIENSTWEG_SUPERVISORY_AUTHORITY") or (
    "Landesbeauftragte für Datenschutz und Informationsfreiheit Nordrhein-Westfalen, "
    "Kavalleriestraße 2–4, 40213 Düsseldorf, poststelle@ldi.nrw.de"
)
# Unusual access, flagged for the DPO's review (manage.py flag_unusual_access): a user who
# reads more families than this in one day outside her own cases; an export of more events
# than this; reads of family data outside these working hours (local time, Monday to
# Friday; weekends and public holidays count as outside).
FLAG_FAMILIES_PER_DAY = env_int("DIENSTWEG_FLAG_FAMILIES_PER_DAY", 20)
FLAG_EXPORT_EVENTS = env_int("DIENSTWEG_FLAG_EXPORT_EVENTS", 10_000)
WORKING_HOURS_START = env_int("DIENSTWEG_WORKING_HOURS_START", 7)
WORKING_HOURS_END = env_int("DIENSTWEG_WORKING_HOURS_END", 19)
# Grants of case and dpo roles, flagged too: a person who proposes or confirms more than this
# many in one day; a confirmation outside the working hours above.
FLAG_GRANTS_PER_DAY = env_int("DIENSTWEG_FLAG_GRANTS_PER_DAY", 5)

# Notification e-mails carry a title, the family reference and a link to this address:
# never a name or any content (dienstweg/notifications.py).
DIENSTWEG_BASE_URL = (env("DIENSTWEG_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
# The TrueType fonts of the PDFs (stamp, Art. 15 report), so that Yılmaz and Łukasz print
# as written: DejaVu from Debian's fonts-dejavu-core (dienstweg/pdf.py, checked at start).
DIENSTWEG_PDF_FONT_DIR = Path(env("DIENSTWEG_PDF_FONT_DIR") or "/usr/share/fonts/truetype/dejavu")
EMAIL_HOST = env("DIENSTWEG_EMAIL_HOST") or ""
if EMAIL_HOST or not DEBUG:
    # Production always sends: without a host, through the local mail server.
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = EMAIL_HOST or "localhost"
else:
    # Development without a mail server: each e-mail becomes a file in var/mail/.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = DATA_DIR / "mail"
EMAIL_PORT = env_int("DIENSTWEG_EMAIL_PORT", 25)
EMAIL_HOST_USER = env("DIENSTWEG_EMAIL_USER") or ""
EMAIL_HOST_PASSWORD = env("DIENSTWEG_EMAIL_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("DIENSTWEG_EMAIL_TLS", False)
# Only the outbox's sender talks to the mail server (dienstweg/outbox.py); a server that
# hangs holds it up this long per attempt, then the mail waits for its retry.
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env("DIENSTWEG_FROM_EMAIL") or "Dienstweg <noreply@dienstweg.invalid>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DIENSTWEG_LOG_LEVEL") or "INFO"},
    "loggers": {
        # Each seal's head, one line per seal, to stderr: the system journal under systemd
        # (audit/anchor.py). At INFO whatever the root level, so it is never filtered out.
        "audit.anchor": {"level": "INFO"},
    },
}
