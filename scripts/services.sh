#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, trust, database "test") and Redis
# (127.0.0.1:6379) answer: use running ones, else install (apt) and start our own.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
updated=0
install() {
  if [ $updated -eq 0 ]; then $SUDO apt-get update -qq; updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v pg_isready >/dev/null || ! pg_up; then
  command -v pg_ctlcluster >/dev/null || install postgresql
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  if ! grep -q "idp-tests" "$hba"; then
    # Local test server only: trust on loopback, as on the project's machines.
    printf '# idp-tests\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
      | $SUDO tee /tmp/idp-hba >/dev/null
    $SUDO sh -c "cat $hba >> /tmp/idp-hba && cp /tmp/idp-hba $hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
    || $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null
fi

if ! command -v redis-cli >/dev/null || ! redis_up; then
  command -v redis-server >/dev/null || install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/idp-test-redis.log
  for _ in $(seq 30); do redis_up && break; sleep 0.5; done
fi
pg_up && redis_up
