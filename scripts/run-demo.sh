#!/usr/bin/env bash
# Set up and run the provider on the embedded default (SQLite under instance/, no
# Redis) with the demo citizen and four demo government websites: two on OpenID Connect
# (ports +1, +2), one on CAS 3.0 (+3) and one on SAML 2.0 (+4).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PORT=${PORT:-5000}
# The demo sites live on the four ports after the provider's, on the issuer's host.
export IDP_ISSUER=${IDP_ISSUER:-http://localhost:$PORT}
.venv/bin/idp init --demo
exec .venv/bin/idp serve --demo --host "${HOST:-127.0.0.1}" --port "$PORT"
