#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API (issue #19): schemathesis reads GET /openapi.json
# from a demo server on loopback and sends what the document allows and what it does not,
# as a manager. It fails on any 5xx (not_a_server_error) and on any status the document
# does not list for that route (status_code_conformance).
#
#   bash server/tests/fuzz/schemathesis.sh [MAX_EXAMPLES]     # default 10 per operation
#
# Needs `st` (pip install schemathesis; installed if missing) and builds `swt` (debug)
# into $CARGO_TARGET_DIR or target/. Bounded: at most SWT_FUZZ_SECONDS (default 240) of
# fuzzing, on a fresh SQLite database, in a temporary directory removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/../../.."
examples=${1:-10}
budget=${SWT_FUZZ_SECONDS:-240}

command -v st >/dev/null || python3 -m pip install --quiet schemathesis
cargo build --quiet -p swt-server --bin swt
bin="${CARGO_TARGET_DIR:-target}/debug/swt"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
SWT_LOG=warn "$bin" demo --listen "127.0.0.1:$port" --database-url "sqlite://$work/swt.db" \
  >"$work/demo.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 120); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.5
done

# The demo manager (see `swt demo`'s printed logins).
token=$(curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"username": "manager", "password": "demo-manager-2026"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

status=0
# POST /api/v1/sync takes the binary batch format (application/vnd.swt.sync-batch),
# which schemathesis cannot generate; tests/sync_flow.rs and the core's wire tests
# cover it.
st run "$base/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance \
  --phases examples,coverage,fuzzing \
  --exclude-path /api/v1/sync \
  --max-examples "$examples" \
  --max-time "$budget" \
  --workers 2 \
  --request-timeout 20 \
  --seed 19 \
  --no-color \
  --warnings off || status=$?

# A panic or an internal error leaves a trace in the log even when the answer was right.
if grep -E '"internal error"|handler panicked|internal error' "$work/server.log" >&2; then
  echo "the server logged internal errors during the fuzz run (above)" >&2
  status=1
fi
exit "$status"
