#!/usr/bin/env bash
# Set up and run the provider on the embedded default (SQLite under instance/, no
# Redis) with the demo citizen, two demo government websites (OpenID Connect) and a
# CAS-protected one, and a SAML 2.0-protected one (http://localhost:5004).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PORT=${PORT:-5000}
# The demo sites live on the three ports after the provider's, on the issuer's host.
export IDP_ISSUER=${IDP_ISSUER:-http://localhost:$PORT}
.venv/bin/idp init --demo
exec .venv/bin/idp serve --demo --host "${HOST:-127.0.0.1}" --port "$PORT"
