#!/usr/bin/env bash
# Set up and run the whole test suite: unit, integration (SQLite + embedded store, and
# PostgreSQL + Redis), an independent OpenID client (openid-client), headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/services.sh
.venv/bin/ruff check .
# tests/resilience (real Sentinel/PostgreSQL failovers, restarts under load, the restore
# and KEK-rotation drills; about three minutes in a worker of its own) is part of the
# run; IDP_RESILIENCE=0 leaves it out of a quick local run. CI sets IDP_RESILIENCE=1.
skip=()
[ "${IDP_RESILIENCE:-1}" = "1" ] || skip=(--ignore=tests/resilience)
# Two workers (pytest-xdist; IDP_TEST_WORKERS=0 runs in one process): much of the suite
# waits on servers, browsers and other processes, so the second core is otherwise idle.
# tests/conftest.py keeps what shares a fixture in one worker.
workers=${IDP_TEST_WORKERS:-2}
parallel=()
[ "$workers" = "0" ] || parallel=(-n "$workers" --dist loadgroup)
exec .venv/bin/python -m pytest -q -p no:cacheprovider "${parallel[@]}" "${skip[@]}" "$@"
