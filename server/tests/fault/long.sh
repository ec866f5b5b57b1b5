#!/usr/bin/env bash
# The long fault suite (issue #19, README "Fault tests"): the same tests as CI's
# `server/tests/fault.rs`, at a size CI has no time for, with a release build:
#   1. the server SIGKILLed SWT_FAULT_KILLS times under syncing scanners, on SQLite;
#   2. the same on PostgreSQL (a database made next to the local server, dropped after);
#   3. a private PostgreSQL cluster crashed SWT_FAULT_PG_RESTARTS times under load.
# Usage: bash server/tests/fault/long.sh
# Sizes (environment): SWT_FAULT_KILLS (default 50), SWT_FAULT_PG_RESTARTS (10),
# SWT_FAULT_SCANS (100: scans acknowledged at most between two faults),
# SWT_FAULT_SCANNERS (4), SWT_FAULT_SEED (repeat a run); PostgreSQL via PGHOST, PGPORT,
# PGUSER (127.0.0.1, 5432, postgres), or SWT_TEST_DATABASE_URL to use a database of yours.
# Each test prints its seed, the faults, the scans, and what the scanners saw.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export SWT_FAULT_KILLS=${SWT_FAULT_KILLS:-50}
export SWT_FAULT_PG_RESTARTS=${SWT_FAULT_PG_RESTARTS:-10}
export SWT_FAULT_SCANS=${SWT_FAULT_SCANS:-100}
export SWT_FAULT_SCANNERS=${SWT_FAULT_SCANNERS:-4}
fault() { cargo test --release -p swt-server --test fault -- --nocapture --test-threads=1 "$@"; }

echo "==> build (release)"
cargo test --release -p swt-server --test fault --no-run

echo "==> SIGKILL loop on SQLite: $SWT_FAULT_KILLS kills"
(unset SWT_TEST_DATABASE_URL; time fault server_sigkill_loop)

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER
if [ -z "${SWT_TEST_DATABASE_URL:-}" ]; then
  if ! psql -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    echo "PostgreSQL at $PGHOST:$PGPORT is unreachable: set PGHOST/PGPORT/PGUSER or SWT_TEST_DATABASE_URL" >&2
    exit 1
  fi
  run_db="swt_fault_$(date +%s)_$$"
  cleanup() {
    psql -d postgres -Atqc "select datname from pg_database where datname like '${run_db}%'" |
      while read -r db; do psql -d postgres -qc "drop database if exists \"$db\" with (force)"; done
  }
  trap cleanup EXIT
  psql -d postgres -qc "create database \"$run_db\""
  export SWT_TEST_DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$run_db"
fi

echo "==> SIGKILL loop on PostgreSQL: $SWT_FAULT_KILLS kills"
time fault server_sigkill_loop

echo "==> PostgreSQL crashed and restarted under load: $SWT_FAULT_PG_RESTARTS times"
time fault postgres_restart
