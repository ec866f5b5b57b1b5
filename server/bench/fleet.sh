#!/usr/bin/env bash
# Issue #21's fleet figures in one go: the real client's behaviour (`--scope working`, the
# default) at several fleet sizes on one back-end, each a fresh server and database
# (server/bench/simulate.sh), then one table: end-to-end scans/s, sync run p50/p99, the
# server's wall time per document exchange by phase, whole documents loaded and saved
# per exchange, the server's CPU in the run per exchange (while the scanners work) and
# per scan (until all is projected), server and simulator peak memory, and the load
# average before each run.
#
#   server/bench/fleet.sh sqlite|postgres SCANS_TIMES_FLEET… [simulate flags…]
#   server/bench/fleet.sh sqlite 10x2000 50x2000 100x1000 200x500 -- --batch 100
#   server/bench/fleet.sh sqlite 10x500 50x500 100x500 200x500 -- --batch 20 --rate 20
#
# Binaries as simulate.sh finds them (SWT_BIN / SWT_BENCH_BIN, else a release build).
# Every run's whole output is kept in the log directory printed at the end.
set -uo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
backend=$1
shift
sizes=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    sizes+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
flags=("$@")
here=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d /tmp/swt-fleet.XXXXXX)

field() { grep -o "\"$1\":[^,}]*" "$2" | tail -1 | cut -d: -f2; }
phase() { grep -o "\"$1\":[0-9.e+-]*" "$2" | tail -1 | cut -d: -f2; }

rows=()
for size in "${sizes[@]}"; do
    scanners=${size%x*} scans=${size#*x}
    log="$logs/$size.log"
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$here/simulate.sh" "$backend" --scanners "$scanners" --scans "$scans" "${flags[@]}" >"$log" 2>&1
    rc=$?
    tput=$(field projected_scans_per_sec "$log")
    p50=$(field sync_p50_ms "$log") p99=$(field sync_p99_ms "$log")
    lw=$(phase lock_wait "$log") ld=$(phase load "$log") mg=$(phase merge "$log") wr=$(phase write "$log")
    wl=$(phase "whole loads" "$log") ws=$(phase "whole saves" "$log")
    cpu=$(grep -o '([0-9.]* ms per exchange), [0-9.]* s until projected ([0-9]* µs per scan)' "$log" | head -1 \
        | sed -E 's/\(([0-9.]*) ms per exchange\), [0-9.]* s until projected \(([0-9]*) µs per scan\)/\1 ms, \2 µs/')
    srss=$(grep -o 'server peak RSS *[0-9]* MB' "$log" | grep -o '[0-9]* MB')
    sim=$(grep -o 'peak RSS [0-9]* kB' "$log" | grep -o '[0-9]*' | awk '{printf "%.0f MB", $1/1024}')
    rows+=("$(printf '%-10s %6s  %8.0f  %6.0f / %-7.0f  %5.2f %5.2f %5.2f %5.2f   %5.3f %5.3f   %-30s %7s  %7s  %s%s' \
        "$size" "$load" "${tput:-0}" "${p50:-0}" "${p99:-0}" "${lw:-0}" "${ld:-0}" "${mg:-0}" "${wr:-0}" \
        "${wl:-0}" "${ws:-0}" "${cpu:-?}" "${srss:-?}" "${sim:-?}" "" "$([ $rc -ne 0 ] && echo "  FAILED (rc $rc)")")")
done
echo "$backend, flags: ${flags[*]:-(none)}"
echo "fleet      load   scans/s   sync p50 / p99 ms   per exchange (ms): lock  load merge write   whole loads saves   server CPU per exchange, scan  server  simulator"
for r in "${rows[@]}"; do echo "$r"; done
echo "logs: $logs"
