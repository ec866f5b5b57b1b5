#!/usr/bin/env bash
# The manager's console in a real browser (issue #23): Debian's Chromium, headless, driven
# by Playwright (playwright-core from npm, no browser download) against `swt demo` on
# loopback with a fresh SQLite file; an axe-core accessibility check on every page.
# Screenshots of every page are kept in target/console-screenshots/ (CI artefacts).
#
#   bash server/tests/browser/run.sh          # builds target/debug/swt if missing
#   SWT_BIN=target/release/swt bash server/tests/browser/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${SWT_BIN:-$root/target/debug/swt}
shots=${SWT_SHOTS:-$root/target/console-screenshots}

if ! command -v chromium >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --locked -p swt-server --bin swt)
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$work" && SWT_LISTEN=127.0.0.1:$port SWT_DATABASE_URL="sqlite://$work/swt.db?mode=rwc" \
  exec "$bin" demo >"$work/server.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log" >&2; echo "swt demo died" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { tail -50 "$work/server.log" >&2; echo "swt demo never became ready" >&2; exit 1; }

mkdir -p "$shots"
SWT_URL="http://127.0.0.1:$port" SWT_SHOTS="$shots" CHROMIUM="$(command -v chromium)" \
  node --test --test-reporter=spec "$here/console.test.mjs" || {
    tail -40 "$work/server.log" >&2
    exit 1
  }
