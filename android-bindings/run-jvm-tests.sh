#!/usr/bin/env bash
# Runs the Kotlin tests of the generated bindings on a plain JVM against the host build of
# swt-core. Installs what is missing (kotlinc via npm into a cache dir, JNA via apt),
# builds swt-core (debug), generates the bindings, compiles, runs. Exits non-zero on any
# failure; the last line is "N passed, M failed".
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

# 3. Host build of the core (unstripped: the bindings come from its metadata).
say "building swt-core (debug) into $target"
(cd "$repo" && CARGO_TARGET_DIR="$target" cargo build -q -p swt-core)
lib="$target/debug/libswt_core.so"
[ -f "$lib" ] || { say "missing $lib"; exit 1; }

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

# 6. Run. The harness prints "N passed, M failed" last and exits 1 on any failure.
"$java" -Djna.library.path="$target/debug" \
    -cp "$build/tests.jar:$k/lib/kotlin-stdlib.jar:$cp" \
    org.swt.core.jvmtest.MainKt "$@"
