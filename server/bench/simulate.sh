#!/usr/bin/env bash
# The issue #5 load figures, rerunnable: starts `swt demo` on a fresh database, runs
# `swt-bench simulate` against it from the same machine, prints the simulator's figures and
# the server's peak resident memory, and stops the server.
#
#   server/bench/simulate.sh sqlite   [simulate flags…]
#   server/bench/simulate.sh postgres [simulate flags…]   # needs SWT_BENCH_PG, default
#                                                         # postgres://postgres@127.0.0.1
# Default flags: --scanners 50 --scans 200 --batch 100. Builds both binaries (release)
# first unless SWT_BIN and SWT_BENCH_BIN name ready ones.
set -euo pipefail

backend=${1:-sqlite}
shift || true
flags=("$@")
if [ ${#flags[@]} -eq 0 ]; then
    flags=(--scanners 50 --scans 200 --batch 100)
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${SWT_BIN:-}" ] || [ -z "${SWT_BENCH_BIN:-}" ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p swt-server -p swt-bench
fi
swt=${SWT_BIN:-$target/release/swt}
swt_bench=${SWT_BENCH_BIN:-$target/release/swt-bench}
# Another build's server against this simulator (e.g. to compare with an older commit).
server_bin=${SWT_SERVER_BIN:-$swt}
port=${SWT_BENCH_PORT:-18080}
work=$(mktemp -d /tmp/swt-bench.XXXXXX)
pg=${SWT_BENCH_PG:-postgres://postgres@127.0.0.1}
db_name="swt_bench_$$"

case "$backend" in
sqlite) url="sqlite://$work/swt.db" ;;
postgres)
    psql "$pg/postgres" -qc "CREATE DATABASE $db_name" >/dev/null
    url="$pg/$db_name"
    ;;
*)
    echo "usage: $0 sqlite|postgres [simulate flags…]" >&2
    exit 2
    ;;
esac

cleanup() {
    if [ -n "${server:-}" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [ "$backend" = postgres ]; then
        psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db_name" >/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Figures must be this server's: refuse to run when something already answers on the port
# (it would be timed instead), and check after start-up that the server started here is
# alive and the one listening.
if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
    echo "something already listens on 127.0.0.1:$port: stop it or set SWT_BENCH_PORT" >&2
    exit 1
fi
"$server_bin" demo --listen "127.0.0.1:$port" --database-url "$url" --log-level warn \
    >"$work/server.out" 2>"$work/server.err" &
server=$!
ready=
for _ in $(seq 1 300); do
    if ! kill -0 "$server" 2>/dev/null; then break; fi
    if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.1
done
listener=$(ss -Htlnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
if [ -z "$ready" ] || ! kill -0 "$server" 2>/dev/null || { [ -n "$listener" ] && [ "$listener" != "$server" ]; }; then
    echo "the server started here (pid $server) is not the one answering on port $port" >&2
    tail -20 "$work/server.err" >&2
    exit 1
fi

status=0
/usr/bin/time -f "simulator CPU       %U s user, %S s system, peak RSS %M kB" \
    "$swt_bench" simulate --server "http://127.0.0.1:$port" --dir "$work/scanners" "${flags[@]}" || status=$?
ticks=$(getconf CLK_TCK)
echo "server CPU          $(awk -v t="$ticks" '{printf "%.1f s user, %.1f s system", $14/t, $15/t}' "/proc/$server/stat")"
echo "server peak RSS     $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$server/status")"
echo "server RSS now      $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$server/status")"
echo "load average        $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
exit $status
