"""Defaults for the embedded mode: one SQLite file under instance/, no Redis.

Every value can be overridden by an environment variable of the same name prefixed
with ``IDP_`` (``IDP_LOCKOUT_THRESHOLD=10``), and a few well-known ones without
the prefix (``DATABASE_URL``, ``REDIS_URL``). See ``config/production.example.env``.
"""

# Where the provider says it lives. Tokens carry it as ``iss``; it must be the URL
# relying parties use, so set IDP_ISSUER in production.
ISSUER = "http://localhost:5000"

# SQLAlchemy URL; None means the embedded SQLite file instance/idp.sqlite3.
DATABASE_URL = None
# Redis URL for short-lived state; None keeps it in the database (embedded store).
REDIS_URL = None
# Prefix for every Redis key, so several deployments (or test runs) share one Redis.
REDIS_PREFIX = "idp:"

# Flask's secret for signed cookies (CSRF). None: generated once into instance/.
SECRET_KEY = None

# Key-encryption key (32 bytes, hex): protects personal data and private keys at rest
# (SM4-GCM) and keys the blind indexes and pairwise subjects (HMAC-SM3). None: made
# once into instance/kek in the embedded default; REQUIRED with an external database,
# because every worker must hold the same key.
KEK = None

# Cookies. SESSION_COOKIE_SECURE is forced on unless the issuer is plain http
# (the embedded demo on localhost).
SSO_COOKIE_NAME = "idp_sso"
UI_COOKIE_NAME = "idp_ui"

# SSO session lifetime, seconds: idle and absolute.
SSO_IDLE_TIMEOUT = 30 * 60
SSO_ABSOLUTE_TIMEOUT = 8 * 60 * 60

# Password sign-in lockout.
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60

# Token lifetimes, seconds.
AUTHORIZATION_CODE_TTL = 60
ACCESS_TOKEN_TTL = 3600
ID_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 30 * 24 * 3600
# Authorization requests waiting for login or consent.
AUTH_REQUEST_TTL = 15 * 60

# Algorithm for access tokens and the default for ID tokens.
ACCESS_TOKEN_ALG = "ES256"
DEFAULT_ID_TOKEN_ALG = "ES256"

# Back-channel logout delivery: attempts and first back-off (doubles each time).
BACKCHANNEL_LOGOUT_ATTEMPTS = 3
BACKCHANNEL_LOGOUT_BACKOFF = 1.0
BACKCHANNEL_LOGOUT_TIMEOUT = 5.0

# Languages offered; the first is the default.
LANGUAGES = ["zh_CN", "en"]

# Password hashing policy: "argon2id" (default) or "pbkdf2-sm3" where national
# algorithms are mandated. Hashes made under another policy are upgraded at sign-in.
PASSWORD_HASH = "argon2id"
PBKDF2_SM3_ITERATIONS = 200_000
# Where organisations' registered names come from: "package.module:ClassName" with a
# ``lookup(uscc)`` method (see idp.orgs.OrgRegistry); None: names are given by the operator.
ORG_REGISTRY = None

# Password hashes computed at once per worker process (each Argon2id hash: one core,
# ARGON2_MEMORY_COST of memory). About cores / workers.
PASSWORD_HASH_CONCURRENCY = 2

# Argon2id parameters (argon2-cffi's RFC 9106 "low memory" profile).
ARGON2_TIME_COST = 3
ARGON2_MEMORY_COST = 64 * 1024
ARGON2_PARALLELISM = 1
