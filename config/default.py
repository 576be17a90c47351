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
# Behind Sentinels: how often (seconds) to ask them which node is the master, so a failover
# is followed within this time even while the old master still accepts writes.
REDIS_MASTER_RECHECK_SECONDS = 1.0
# REDIS_URL forms: redis://h:6379/0, rediss://… (TLS), redis+sentinel://h:26379,h:26380/SERVICE
# (follows the master the Sentinels elect), redis+cluster://h:7000,h:7001 (Redis Cluster).

# PostgreSQL connection pool. Pre-ping tests each pooled connection as it is checked out,
# so connections a database restart or failover broke are replaced before a request uses
# them (a few hundred microseconds on a LAN) instead of failing that request.
DB_POOL_PRE_PING = True
# Seconds a request waits for a pooled connection, and for a new one to connect, before
# it is answered 503 (a database that is down must not hold every worker thread).
DB_POOL_TIMEOUT = 10
DB_CONNECT_TIMEOUT = 5

# Flask's secret for signed cookies (CSRF). None: generated once into instance/.
SECRET_KEY = None

# Key-encryption key (32 bytes, hex): protects personal data and private keys at rest
# (SM4-GCM) and keys the blind indexes and pairwise subjects (HMAC-SM3). None: made
# once into instance/kek in the embedded default; REQUIRED with an external database,
# because every worker must hold the same key.
KEK = None

# The key-encryption key being rotated away from (same format as KEK). Set it, with the
# new key as KEK, only for a rotation: deploy both, run `idp kek rotate`, and remove it
# once `idp kek status` says complete. Data keys wrapped under it are accepted meanwhile.
KEK_PREVIOUS = None

# Cookies. SESSION_COOKIE_SECURE is forced on unless the issuer is plain http
# (the embedded demo on localhost).
SSO_COOKIE_NAME = "idp_sso"
UI_COOKIE_NAME = "idp_ui"

# SSO session lifetime, seconds: idle and absolute.
SSO_IDLE_TIMEOUT = 30 * 60
SSO_ABSOLUTE_TIMEOUT = 8 * 60 * 60

# Password sign-in lockout, per account (its ID number and phone share one): wrong
# passwords within LOCKOUT_SECONDS before the account is locked for LOCKOUT_SECONDS.
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60
# At most LOCKOUT_THRESHOLD passwords of one account are checked at once; a sign-in
# beyond that waits this many seconds at most for a check to finish, then is refused.
LOCKOUT_WAIT_SECONDS = 10

# Token lifetimes, seconds.
AUTHORIZATION_CODE_TTL = 60
ACCESS_TOKEN_TTL = 3600
ID_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 30 * 24 * 3600
# The longest a client's signed assertion (private_key_jwt at /token, /introspect,
# /revoke, /bc-authorize) may live: exp - iat and exp - now, seconds. One made to live
# for years would be a password that never expires for whoever copies it.
CLIENT_ASSERTION_MAX_LIFETIME = 300
# Authorization requests waiting for login or consent.
AUTH_REQUEST_TTL = 15 * 60
# The sign-in pages warn this many seconds before a request lapses and offer to extend
# it by AUTH_REQUEST_EXTEND_SECONDS, never past AUTH_REQUEST_MAX_AGE after it started
# (WCAG 2.2.1: no time limit without a warning and an extension).
AUTH_REQUEST_WARN_SECONDS = 120
AUTH_REQUEST_EXTEND_SECONDS = 15 * 60
AUTH_REQUEST_MAX_AGE = 3600
# Pending requests one client address may start per minute (behind TRUSTED_PROXIES, the
# address the proxy saw). Each lives AUTH_REQUEST_TTL, so this bounds what anonymous
# callers can make the store hold; generous, since a service hall's citizens may share
# one NAT address.
AUTH_REQUESTS_PER_MINUTE = 300

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

# WebAuthn (passkeys, fingerprint and face unlock). RP ID None: the ISSUER's host name;
# origins empty: the ISSUER's own origin (a list when the pages are served elsewhere too).
WEBAUTHN_RP_ID = None
WEBAUTHN_RP_NAME = "统一身份认证平台"
WEBAUTHN_ORIGINS = []
# Seconds a registration or sign-in challenge stays usable (once).
WEBAUTHN_CHALLENGE_TTL = 300
# Binding a new credential needs a sign-in at most this many seconds old, so a stolen
# session cookie cannot be turned into a lasting credential.
WEBAUTHN_REGISTER_MAX_AGE = 15 * 60

# -- SMS one-time codes, TOTP, real-name verification, step-up (idp.authn.sms/totp/realname)
# Where SMS goes: "dev" (appends JSON lines to SMS_OUTBOX, for the demo and tests),
# "http" (POST JSON to SMS_HTTP_URL) or "package.module:ClassName" with send(message).
# None: "dev" in the embedded default and in tests; with an external database nothing
# is sent until a gateway is configured (codes never go quietly to a file).
SMS_GATEWAY = None
# Dev outbox file; None: instance/sms_outbox.log.
SMS_OUTBOX = None
SMS_HTTP_URL = None
# Header and value that authenticate us to the HTTP gateway (e.g. "Bearer …").
SMS_HTTP_AUTH_HEADER = "Authorization"
SMS_HTTP_AUTH_VALUE = None
SMS_HTTP_TIMEOUT = 5.0
# Life of a code, seconds; wrong tries before a code is dead.
SMS_CODE_TTL = 300
SMS_CODE_MAX_TRIES = 5
# Send limits, shared by all workers: per phone one per interval and so many an hour;
# per client IP address so many an hour.
SMS_PHONE_INTERVAL = 60
SMS_PHONE_HOURLY = 10
SMS_IP_HOURLY = 30
# The issuer name an authenticator app shows next to TOTP codes.
TOTP_ISSUER = "统一身份认证平台"
# Time steps (30 s) accepted either side of now, for clock drift.
TOTP_WINDOW = 1
# Wrong TOTP codes or step-up passwords per person before that method rests for the window.
STEPUP_MAX_FAILURES = 5
STEPUP_FAILURE_WINDOW = 15 * 60
# Real-name check against the population register: "package.module:ClassName" with
# verify(name, id_number), or "dev" (matches the account record: passes anyone who types
# their own account's details; for demos and tests). None: "dev" in the embedded default,
# and outside it no verifier (every check "unavailable") until one is configured.
REALNAME_VERIFIER = None
# ID numbers the dev verifier answers "not in the register" for.
REALNAME_DEV_NOT_IN_REGISTER = []
# Register look-ups per person per day (each may cost money and reveals a match).
REALNAME_DAILY_TRIES = 5
# Adding or removing an authenticator needs a sign-in at most this many seconds old.
SECURITY_REAUTH_SECONDS = 15 * 60

# QR scan-to-login (idp.channels.qr): a ticket's lifetime, how often the login page
# asks whether it was approved, and how many codes one browser may ask for a minute.
QR_TICKET_TTL = 120
QR_POLL_INTERVAL_MS = 1000
QR_TICKETS_PER_MINUTE = 20
# And per client address (behind TRUSTED_PROXIES, the address the proxy saw), since a
# fresh cookie is a fresh browser: higher, as a hall's browsers may share one NAT address.
QR_TICKETS_PER_ADDRESS_PER_MINUTE = 120

# Service-hall counters and hotlines (idp.channels.ciba): how long a back-channel
# request waits for the citizen (default, and the most a client may ask for with
# requested_expiry) and the polling interval, in seconds.
CIBA_EXPIRES_IN = 300
CIBA_MAX_EXPIRES_IN = 600
CIBA_INTERVAL = 5
# Requests one hall or hotline client may have waiting on one person's app at once;
# more are refused (429) until one is decided or expires, so a counter cannot wear
# a citizen down with prompts until one is approved by mistake.
CIBA_MAX_PENDING_PER_PERSON = 3
# Lookups per client that name nobody (or nobody usable) within the window, seconds;
# past the limit the client looks up no one until the window ends (ID-number probing).
CIBA_UNKNOWN_HINT_LIMIT = 30
CIBA_UNKNOWN_HINT_WINDOW = 600
# The counter-clerk and hotline-agent demo consoles (/demo/hall, /demo/hotline). They
# let anyone who reaches them push approval requests and SMS codes to any citizen:
# so they are off unless asked for (as are the kiosk screen /demo/kiosk and the app
# simulator /demo/app): `idp serve --demo` turns them on, or IDP_CHANNEL_DEMOS=true.
CHANNEL_DEMOS = False
# Where the demo consoles reach the provider's own endpoints; None: the issuer.
CIBA_DEMO_PROVIDER_URL = None

# Kiosk channel (idp/channels/device.py and kiosk.py).
# Device authorization grant (RFC 8628): lifetime of a device/user code pair and the
# polling interval a device is told to keep (each slow_down adds 5 seconds).
DEVICE_CODE_TTL = 600
DEVICE_POLL_INTERVAL = 5
# Device authorization requests (/device_authorization) per client address a minute:
# each makes a code pair the store keeps DEVICE_CODE_TTL, and public clients need no
# credentials to ask. A hall's screens may share one NAT address.
DEVICE_AUTHZ_PER_MINUTE = 60
# Wrong user codes typed on /device, per person and per address, in a window (seconds).
DEVICE_USER_CODE_ATTEMPTS = 10
DEVICE_USER_CODE_WINDOW = 15 * 60
# Trusted kiosk assertions (RFC 7523): the longest lifetime accepted (exp - iat, seconds)
# and the lowest face-match score a kiosk may report as a match.
KIOSK_ASSERTION_MAX_AGE = 300
KIOSK_FACE_MIN_SCORE = 0.8
# A kiosk signs the person out after this many seconds without a touch.
KIOSK_IDLE_TIMEOUT = 120
# The demo kiosk screen at /demo/kiosk: "true"/"false"; None: as CHANNEL_DEMOS.
KIOSK_DEMO = None

# -- Upstream OpenID Connect providers (connectors.oidc_upstream, idp.authn.upstream_views)
# Other provinces' or departments' IdPs people may sign in with: TOML file paths (relative
# ones against the instance folder) and/or tables of the same shape. Environment:
# IDP_UPSTREAM_IDPS as a JSON list, or comma-separated paths.
UPSTREAM_IDPS = []
# Seconds a person has to finish signing in at the upstream (the state lives this long).
UPSTREAM_STATE_TTL = 600
# Seconds to wait for an upstream's discovery, JWKS, token and userinfo endpoints.
UPSTREAM_TIMEOUT = 10.0

# -- Online face match (idp.authn.face): an L3 account steps up to L4 with a camera.
# "package.module:ClassName" with verify(person, image, *, liveness) asking the photo
# register (CTID or provincial face-comparison service); "dev" (accepts any usable
# picture: demos and tests only); "off". None: "dev" in the embedded demo and in tests,
# "off" otherwise, so a production deployment never hands out L4 for any photo.
FACE_VERIFIER = None
# ID numbers the dev verifier answers "not the same person" for.
FACE_DEV_MISMATCH = []
# Comparisons per person per day (each costs money and tells an impostor how close they came).
FACE_DAILY_TRIES = 5
# The lowest similarity score accepted as a match, whatever the service says.
FACE_MIN_SCORE = 0.8
# What a picture must be: bytes, and the shorter side in pixels.
FACE_IMAGE_MIN_BYTES = 1024
FACE_IMAGE_MAX_BYTES = 2 * 1024 * 1024
FACE_IMAGE_MIN_SIDE = 200

# Reverse proxies / load balancers in front of the provider that set X-Forwarded-For and
# X-Forwarded-Proto (0: none; the headers are then ignored, as anyone can send them).
TRUSTED_PROXIES = 0

# -- Digital certificate sign-in (idp.authn.cert_login): level L5 with a citizen's
# certificate on a USB key or smart card. The TLS terminator does the mutual TLS (nginx:
# `ssl_verify_client optional;` plus `ssl_client_certificate` for the CA list browsers
# are offered) and forwards the certificate:
#     proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
# A certificate is public, so the header is believed only from our own proxy: it is read
# only with TRUSTED_PROXIES > 0, and the proxy MUST overwrite or strip any copy the client
# sent (proxy_set_header does; a header that arrives twice is refused). The provider
# checks the certificate again itself: chain, validity, clientAuth usage, CRL.
CERT_LOGIN = False
# Header carrying the client certificate: URL-encoded PEM ($ssl_client_escaped_cert),
# plain PEM or base64 DER; further certificates after the first count as intermediates.
CERT_HEADER = "X-SSL-Client-Cert"
# PEM bundle of the CAs whose citizens' certificates are accepted: their self-signed
# roots (trust anchors) and any intermediates. List only CAs that issue certificates in
# person onto hardware: such a sign-in counts as L5 (amr "sc"). Required when CERT_LOGIN.
CERT_CA_FILE = None
# Optional CRL file (PEM, several CRLs concatenated, or one DER). When set, the CA that
# issued the citizen's certificate must have a current CRL in it, or sign-in is refused
# (fail closed): refresh it from the CAs' distribution points before nextUpdate.
CERT_CRL_FILE = None
# Where the ID number is in the certificate's subject: an attribute ("serialNumber",
# "CN", "UID" or a dotted OID), or a regular expression searched in the CN whose group
# (named "id", else the first) is the number, e.g. r"\((\d{17}[\dXx])\)".
CERT_ID_FIELD = "serialNumber"
# Address of the certificate sign-in page when the terminator asks for certificates only
# there (e.g. "https://idp.example.gov.cn:8443/login/cert"); it must be the same host name
# (another port is fine) so the sign-in cookies are shared. None: /login/cert on this site.
CERT_LOGIN_URL = None
# Mutual TLS for relying parties (RFC 8705) at another address than the issuer's: the
# base URL (https, no path) where the terminator asks clients for certificates, e.g.
# "https://mtls.idp.example.gov.cn", passing the Host header through and forwarding the
# certificate in CERT_HEADER as above. Discovery then lists mtls_endpoint_aliases. Needs
# TRUSTED_PROXIES > 0. None: clients use the issuer's endpoints (certificates asked there).
MTLS_ENDPOINT_BASE = None

# -- The account pages and the rough edges of issue 11 (idp.account, idp.authn.new_device)
# Times shown to people are in this zone (an IANA name), always with the zone's name
# next to them, so a hall screen and an enterprise page never disagree.
TIME_ZONE = "Asia/Shanghai"
# Closing an account (注销) waits this many days, during which the person may cancel;
# then personal data is erased (`idp account close-due` runs the erasures due).
ACCOUNT_CLOSE_COOLING_DAYS = 15
# How far back a person's own sign-in history goes, and how many entries per page.
ACCOUNT_HISTORY_DAYS = 180
ACCOUNT_HISTORY_PAGE = 20
# An SMS to the account's phone after a sign-in from a browser and network it has not
# used before ("new device" notice). False turns the notice off.
NEW_DEVICE_NOTICE = True
# How long a browser/network the account signed in from is remembered as known.
NEW_DEVICE_MEMORY_DAYS = 180

# -- Registration (个人注册) and recovery (找回密码): idp.account.registration/recovery.
# Anyone may register at /register (and by prompt=create); False hides the links and
# answers 404, for deployments where accounts come only from imports and counters.
REGISTRATION_OPEN = True
# A new password (registration, recovery, change): at least this many characters (8 to
# 128; accounts.create_person refuses fewer than 8) and this many kinds of character
# (1 to 4: upper case, lower case, digits, others). Common passwords are always refused.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MIN_CLASSES = 2
# Optional UTF-8 file of further refused passwords, one a line ("#" starts a comment),
# added to the list shipped in idp/authn/data/common_passwords.txt.
PASSWORD_DENYLIST_FILE = None
# Registration and recovery attempts (sending a code, submitting the form): per client
# address per hour, and per ID number per day (a number probed from many addresses).
REGISTER_ADDRESS_HOURLY = 20
REGISTER_NUMBER_DAILY = 6
RECOVER_ADDRESS_HOURLY = 20
RECOVER_NUMBER_DAILY = 6

# CAS 3.0 server (/cas). Service and proxy tickets are single use and live this many
# seconds (the CAS specification recommends no more than a few: the ticket travels in a
# URL). Proxy-granting tickets live at most CAS_PGT_TTL and end with the SSO session.
CAS_TICKET_TTL = 10
CAS_PGT_TTL = 2 * 60 * 60
# The pgtUrl callback (always https): how long to wait, and the PEM bundle of CAs its
# certificate must chain to (None: the system's CAs).
CAS_PROXY_CALLBACK_TIMEOUT = 5.0
CAS_PROXY_CA_FILE = None

# SAML 2.0 identity provider (/saml). Assertions are valid this many seconds after
# issue (the SP must use them at once); messages' clocks may differ by SAML_CLOCK_SKEW
# seconds. xmlsec1 (Debian package xmlsec1) signs, verifies and encrypts for pysaml2.
SAML_ASSERTION_LIFETIME = 300
SAML_CLOCK_SKEW = 60
SAML_XMLSEC_BINARY = "xmlsec1"

# -- High-assurance relying parties (issue 14: idp.oidc.par, request_object, dpop, mtls,
# client_keys, registration). FAPI 2.0 clients (`idp client add --profile fapi2`) get
# the strict form of each whatever the server-wide switches say.
# Pushed authorization requests (RFC 9126): how long a request_uri lives (single use).
PAR_REQUEST_URI_TTL = 60
# Server-wide: every authorization request must be pushed first (per client it is the
# registration's require_pushed_authorization_requests).
REQUIRE_PUSHED_AUTHORIZATION_REQUESTS = False
# Signed request objects (RFC 9101): the longest exp - iat (and exp - now) accepted, so a
# captured request object cannot be replayed for long.
REQUEST_OBJECT_MAX_LIFETIME = 300
# DPoP (RFC 9449): how far a proof's iat may be from our clock, in seconds.
DPOP_PROOF_MAX_AGE = 60
# Whether the token and PAR endpoints demand a server nonce in DPoP proofs (answered with
# use_dpop_nonce and a DPoP-Nonce header; clients retry once). Nonces change every
# DPOP_NONCE_LIFETIME seconds (the previous one is accepted too).
DPOP_REQUIRE_NONCE = True
# The same at this provider's resources (userinfo, the app API; RFC 9449 §9): a 401 with
# WWW-Authenticate: DPoP error="use_dpop_nonce" and a DPoP-Nonce header, retried once.
DPOP_REQUIRE_NONCE_AT_RESOURCE = True
DPOP_NONCE_LIFETIME = 300
# Client keys by reference (jwks_uri): fetched with this timeout (seconds) and size cap
# (bytes) and kept this long (seconds). An unknown kid triggers a re-fetch at most once
# per CLIENT_JWKS_REFETCH_INTERVAL seconds, so a flood of made-up kids cannot turn the
# provider into a request amplifier against the client's server.
CLIENT_JWKS_TIMEOUT = 5
CLIENT_JWKS_MAX_BYTES = 64 * 1024
CLIENT_JWKS_CACHE_SECONDS = 300
CLIENT_JWKS_REFETCH_INTERVAL = 30
# Whether jwks_uri (and other client-supplied fetch addresses) may point at loopback,
# private, link-local or reserved addresses. Only for development and tests: on a
# server this would let a registration probe the internal network (SSRF).
CLIENT_FETCH_ALLOW_PRIVATE = False
# FAPI 2.0 (§5.3.2.1): authorization codes of FAPI clients live at most this long.
FAPI_AUTHORIZATION_CODE_TTL = 60
# Dynamic client registration (RFC 7591/7592): how long an operator's initial access
# token (`idp client initial-token`) stays valid, in seconds, by default.
REGISTRATION_INITIAL_TOKEN_TTL = 7 * 24 * 3600
# Signed authorization responses (JARM): how long the response JWT is valid.
JARM_RESPONSE_TTL = 120
# CIBA ping mode: timeout (seconds) of the notification to the client's endpoint.
CIBA_PING_TIMEOUT = 5
# Resource indicators (RFC 8707, idp.oidc.resources): the resource servers clients may ask
# audience-restricted access tokens for, each "CLIENT_ID=https://resource/" — the client
# id the resource server introspects with, and its resource URI (https, no fragment).
# Environment: IDP_RESOURCE_SERVERS=tax-api=https://api.tax.example.gov.cn/,...
RESOURCE_SERVERS = []

# /metrics (Prometheus) answers only these client addresses or networks (after
# TRUSTED_PROXIES) — or anyone sending "Authorization: Bearer <METRICS_TOKEN>" — and is
# a 404 to everyone else. Environment: IDP_METRICS_ALLOW=127.0.0.1,10.0.0.0/8
METRICS_ALLOW = ["127.0.0.1", "::1"]
# A long random token for scrapers outside METRICS_ALLOW (at least 16 characters); None: none.
METRICS_TOKEN = None
