#!/usr/bin/env bash
# Runs the Kotlin tests of the generated bindings on a plain JVM against the host build of
# swt-core. Installs what is missing (kotlinc via npm into a cache dir, JNA via apt),
# builds swt-core (debug), generates the bindings, compiles, runs. Exits non-zero on any
# failure; the last line is "N passed, M failed".
#
# The sync suite runs against a real server: the script builds the `swt` binary, starts
# `swt demo --listen 127.0.0.1:0` in a fresh temporary directory (its own SQLite file),
# reads the bound address from its "listening on http://..." log line, passes it to the
# tests as SWT_SERVER_URL and stops the server with SIGTERM on exit (also on failure).
#
#   android-bindings/run-jvm-tests.sh [test-name-filter]
#
# Environment: CARGO_TARGET_DIR (default <repo>/target), SWT_KOTLIN_DIR (default
# $HOME/.cache/swt-kotlin), JAVA (default java).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
kotlin_dir="${SWT_KOTLIN_DIR:-$HOME/.cache/swt-kotlin}"
kotlin_version="2.4.20"
java="${JAVA:-java}"
build="$here/build/jvm-test"
generated="$here/build/generated/uniffi-jvm"

say() { echo "run-jvm-tests: $*" >&2; }

# 1. Kotlin compiler (npm's package links only kotlinc-js into .bin: call bin/kotlinc by path).
k="$kotlin_dir/node_modules/kotlin-compiler"
if [ ! -x "$k/bin/kotlinc" ] || ! grep -q "\"version\": \"$kotlin_version\"" "$k/package.json" 2>/dev/null; then
    say "installing kotlin-compiler@$kotlin_version into $kotlin_dir"
    mkdir -p "$kotlin_dir"
    (cd "$kotlin_dir" && npm install --no-audit --no-fund --loglevel=error "kotlin-compiler@$kotlin_version" >&2)
fi

# 2. JNA (Debian's package finds its native dispatch library by itself).
jna=/usr/share/java/jna.jar
if [ ! -f "$jna" ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    say "installing libjna-java"
    if ! $sudo apt-get install -y libjna-java >&2; then
        $sudo apt-get update >&2
        $sudo apt-get install -y libjna-java >&2
    fi
fi

# 3. Host build of the core (unstripped: the bindings come from its metadata) and of the
#    server the sync suite talks to.
say "building swt-core and swt (debug) into $target"
(cd "$repo" && CARGO_TARGET_DIR="$target" cargo build -q -p swt-core -p swt-server --bin swt --lib)
lib="$target/debug/libswt_core.so"
[ -f "$lib" ] || { say "missing $lib"; exit 1; }
swt="$target/debug/swt"
[ -x "$swt" ] || { say "missing $swt"; exit 1; }

# 4. Bindings, default config (not `android = true`: those need android.* classes).
say "generating Kotlin bindings"
rm -rf "$generated"
(cd "$repo" && CARGO_TARGET_DIR="$target" cargo run -q -p uniffi-bindgen -- \
    generate --no-format "$lib" --language kotlin --out-dir "$generated" >&2)

# 5. Compile bindings + tests into one jar.
cp="$jna:$k/lib/kotlinx-coroutines-core-jvm.jar"
mkdir -p "$build"
say "compiling with kotlinc"
# shellcheck disable=SC2046
"$k/bin/kotlinc" -nowarn -classpath "$cp" \
    $(find "$generated" -name '*.kt') $(find "$here/jvm-test/src" -name '*.kt') \
    -d "$build/tests.jar" >&2

# 6. A real server with demo data, in a fresh directory (fresh SQLite database).
server_dir="$(mktemp -d "${TMPDIR:-/tmp}/swt-jvm-server.XXXXXX")"
server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$server_dir"
}
trap stop_server EXIT
trap 'exit 130' INT TERM
say "starting swt demo in $server_dir"
(
    cd "$server_dir"
    exec env -u SWT_CONFIG -u SWT_DATABASE_URL -u SWT_LISTEN NO_COLOR=1 SWT_LOG=info \
        "$swt" demo --listen 127.0.0.1:0 --log-format human \
        --database-url "sqlite://$server_dir/swt.db?mode=rwc" \
        >"$server_dir/stdout.log" 2>"$server_dir/stderr.log"
) &
server_pid=$!
server_url=""
for _ in $(seq 1 300); do
    server_url="$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$server_dir/stderr.log" 2>/dev/null \
        | head -n1 | sed 's/^listening on //')" || true
    [ -n "$server_url" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        say "swt demo exited early:"; cat "$server_dir/stderr.log" >&2; exit 1
    fi
    sleep 0.1
done
[ -n "$server_url" ] || { say "swt demo did not report its address in 30 s"; cat "$server_dir/stderr.log" >&2; exit 1; }
say "server at $server_url"

# 7. Run. The harness prints "N passed, M failed" last and exits 1 on any failure.
SWT_SERVER_URL="$server_url" "$java" -Djna.library.path="$target/debug" \
    -cp "$build/tests.jar:$k/lib/kotlin-stdlib.jar:$cp" \
    org.swt.core.jvmtest.MainKt "$@"
