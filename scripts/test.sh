#!/usr/bin/env bash
# Set up and run the whole test suite: unit, integration (SQLite + embedded store, and
# PostgreSQL + Redis), an independent OpenID client (openid-client), headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/services.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
