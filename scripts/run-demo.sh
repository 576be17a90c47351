#!/usr/bin/env bash
# Set up and run the provider on the embedded default (SQLite under instance/, no
# Redis) with the demo citizen and two demo government websites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/idp init --demo
exec .venv/bin/idp serve --demo --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}"
