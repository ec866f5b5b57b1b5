#!/usr/bin/env bash
# Two builds side by side on the scanner-fleet load (issue #20 point 8): N alternating runs
# of server/bench/simulate.sh per build, on one back-end, then each build's min–max and the
# ratio B/A of the medians. Alternating (A B, B A, A B, …) puts the shared machine's drift
# on both builds alike; compare figures only within one invocation.
#
#   server/bench/compare.sh sqlite|postgres RUNS A_SWT A_SIM B_SWT B_SIM [simulate flags…]
#
# A_SWT / B_SWT: the `swt` server binaries; A_SIM / B_SIM: the simulators, run as
# `SIM simulate …` (a build from before the swt-bench crate has the simulator in `swt`
# itself: give its `swt` as the simulator too). The same simulator on both sides compares
# the servers alone. Default flags: --scanners 50 --scans 2000 --batch 100 --own-task.
# Each run's output is kept in a log directory (printed at the end). Figures per run:
# end-to-end scans/s (recorded, synced and projected), the sync run p99, the server's
# CPU time (user + system) and peak RSS, with the load average just before the run.
set -uo pipefail

if [ $# -lt 6 ]; then
    sed -n '2,16p' "$0" >&2
    exit 2
fi
backend=$1 runs=$2
swt=("$3" "$5") sim=("$4" "$6")
name=(A B)
shift 6
flags=("$@")
if [ ${#flags[@]} -eq 0 ]; then
    flags=(--scanners 50 --scans 2000 --batch 100 --own-task)
fi
here=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d /tmp/swt-compare.XXXXXX)
echo "A: ${swt[0]} / ${sim[0]}"
echo "B: ${swt[1]} / ${sim[1]}"
echo "$backend, $runs runs each, flags: ${flags[*]}"

# field NAME FILE: a number from the simulator's JSON summary line ("null" if absent).
field() { grep -o "\"$1\":[^,}]*" "$2" | tail -1 | cut -d: -f2; }

tput0=() tput1=() p990=() p991=() cpu0=() cpu1=() rss0=() rss1=()
failed=0
for ((i = 0; i < runs; i++)); do
    # A B, then B A: neither build always goes first.
    order=(0 1)
    if ((i % 2)); then order=(1 0); fi
    for s in "${order[@]}"; do
        log="$logs/run$((i + 1))-${name[$s]}.log"
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        SWT_BIN=${swt[$s]} SWT_BENCH_BIN=${sim[$s]} \
            "$here/simulate.sh" "$backend" "${flags[@]}" >"$log" 2>&1
        rc=$?
        tput=$(field projected_scans_per_sec "$log")
        p99=$(field sync_p99_ms "$log")
        errors=$(field errors "$log")
        rss=$(awk '/server peak RSS/ {print $4}' "$log")
        cpu=$(awk '/server CPU/ {print $3 + $6}' "$log")
        status=ok
        if [ $rc -ne 0 ] || [ -z "$tput" ] || [ "$tput" = null ]; then
            status="FAILED (exit $rc, errors ${errors:-?}; see $log)"
            failed=1
        else
            eval "tput$s+=($tput) p99$s+=($p99) cpu$s+=($cpu) rss$s+=($rss)"
        fi
        shown=${tput/null/0}
        printf 'run %d %s  load %-15s  %6.0f scans/s  sync p99 %6.1f ms  CPU %5s s  peak RSS %4s MB  %s\n' \
            $((i + 1)) "${name[$s]}" "$load" "${shown:-0}" "${p99:-0}" "${cpu:-?}" "${rss:-?}" "$status"
    done
done

# stats FORMAT VALUES…: "min max median", each printed with FORMAT.
stats() {
    local f=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v f="$f" '{v[NR] = $1} END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf f " " f " " f "\n", v[1], v[NR], m }'
}
echo
for metric in "tput:%.0f:end to end (scans/s)" "p99:%.1f:sync p99 (ms)" \
    "cpu:%.1f:server CPU (s)" "rss:%.0f:server peak RSS (MB)"; do
    IFS=: read -r key fmt label <<<"$metric"
    eval "a=(\"\${${key}0[@]}\") b=(\"\${${key}1[@]}\")"
    if [ ${#a[@]} -eq 0 ] || [ ${#b[@]} -eq 0 ]; then
        echo "$label: no complete run on one side"
        continue
    fi
    read -r amin amax amed <<<"$(stats "$fmt" "${a[@]}")"
    read -r bmin bmax bmed <<<"$(stats "$fmt" "${b[@]}")"
    printf '%-26s A %s–%s (median %s)  B %s–%s (median %s)  B/A %s\n' "$label" \
        "$amin" "$amax" "$amed" "$bmin" "$bmax" "$bmed" "$(awk -v a="$amed" -v b="$bmed" 'BEGIN {printf "%.3f", b / a}')"
done
echo "logs: $logs"
exit $failed
