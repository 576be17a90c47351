#!/usr/bin/env bash
# Prepare this checkout: a virtualenv with the project and its dependencies.
# Idempotent; safe to run on every start. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_updated=0
apt_install() {
  if [ $apt_updated -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY=$cand; break
    fi
  done
fi
if [ -z "$PY" ]; then
  apt_install python3 python3-venv python3-dev
  PY=python3
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv 2>/dev/null || { apt_install python3-venv; "$PY" -m venv .venv; }
fi
stamp=.venv/.idp-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || { [ $want_test -eq 1 ] && ! grep -q test "$stamp"; }; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ $want_test -eq 1 ]; then
    .venv/bin/python -m pip install -q -e '.[test]'
    echo test > "$stamp"
  else
    .venv/bin/python -m pip install -q -e .
    echo run > "$stamp"
  fi
fi

# xmlsec1 signs, verifies and encrypts SAML messages for pysaml2 (idp/saml).
command -v xmlsec1 >/dev/null || apt_install xmlsec1

if [ $want_test -eq 1 ]; then
  command -v chromium >/dev/null || apt_install chromium
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  command -v openssl >/dev/null || apt_install openssl
  # OpenLDAP server and tools: tests/connectors starts its own slapd on a loopback port.
  { command -v slapd >/dev/null || [ -x /usr/sbin/slapd ]; } || apt_install slapd ldap-utils
  # A CJK font, so screenshots of the Chinese pages show characters, not boxes.
  fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || apt_install fonts-wqy-microhei
  # mod_auth_mellon: tests/e2e/test_saml_mellon.py runs its own Apache as a SAML service
  # provider on a loopback port (no system service).
  [ -f /usr/lib/apache2/modules/mod_auth_mellon.so ] || apt_install apache2-bin libapache2-mod-auth-mellon
  # Apache httpd with mod_auth_cas: tests/e2e/test_cas_apache.py runs its own Apache as a
  # CAS-protected site on a loopback port (no system service).
  [ -f /usr/lib/apache2/modules/mod_auth_cas.so ] || apt_install apache2-bin libapache2-mod-auth-cas
  # tests/resilience starts its own redis-server processes (Sentinel, Cluster, TLS) and a
  # second PostgreSQL cluster with a streaming standby (initdb, pg_basebackup, pg_ctl).
  command -v redis-server >/dev/null || apt_install redis-server redis-tools
  command -v pg_basebackup >/dev/null || apt_install postgresql
  if [ -f tests/e2e/package.json ]; then
    if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package.json -nt tests/e2e/node_modules ]; then
      if [ -f tests/e2e/package-lock.json ]; then npm ci --prefix tests/e2e --no-audit --no-fund >/dev/null
      else npm install --prefix tests/e2e --no-audit --no-fund >/dev/null; fi
      touch tests/e2e/node_modules
    fi
    # The benchmarks' peer (node-oidc-provider), run by tests/bench's smoke runs.
    if [ ! -d bench/node/node_modules ] || [ bench/node/package.json -nt bench/node/node_modules ]; then
      npm ci --prefix bench/node --no-audit --no-fund >/dev/null
      touch bench/node/node_modules
    fi
    # The console's charts: Chart.js is vendored in admin/static/vendor (pages load
    # nothing from another site); refresh it from the pinned npm package when that is newer.
    chart=tests/e2e/node_modules/chart.js/dist/chart.umd.min.js
    if [ -f "$chart" ] && ! cmp -s "$chart" admin/static/vendor/chart.umd.min.js; then
      mkdir -p admin/static/vendor
      cp "$chart" admin/static/vendor/chart.umd.min.js
      cp tests/e2e/node_modules/chart.js/LICENSE.md admin/static/vendor/chart.js.LICENSE.md
    fi
  fi
fi
