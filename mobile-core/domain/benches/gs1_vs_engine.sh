#!/bin/sh
# swt's GS1 parser side by side with GS1's own C engine (the GS1 Barcode Syntax Engine,
# github.com/gs1/gs1-syntax-engine, Apache-2.0) on the mixed corpus data/gs1-mix.tsv:
# verdict agreement line by line, then ns/parse per class and on the whole mix.
#
# Usage: mobile-core/domain/benches/gs1_vs_engine.sh ENGINE_LIB_DIR [ROUNDS]
#
# ENGINE_LIB_DIR is the engine's src/c-lib directory after you built its static library
# there yourself, with the engine's own build and its default -O2 (it holds gs1encoders.h
# and build/libgs1encoders.a). Figures in docs/benchmarks.md were taken with commit
# 50657dbd04ce78d8734e8793e054bf70dcba294b. This script never fetches or builds the
# engine, and nothing of the engine is committed to swt: only our driver,
# gs1_engine_driver.c, which this script compiles (-O2) and links against that library,
# in a scratch directory outside the work tree.
#
# Run from anywhere inside the swt work tree; set CARGO_TARGET_DIR as usual.
set -eu

engine=${1:?usage: gs1_vs_engine.sh ENGINE_LIB_DIR [ROUNDS]}
rounds=${2:-200}
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/data/gs1-mix.tsv"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/gs1-vs-engine.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

[ -f "$engine/gs1encoders.h" ] && [ -f "$engine/build/libgs1encoders.a" ] || {
    echo "no built engine in $engine (want gs1encoders.h and build/libgs1encoders.a)" >&2
    exit 2
}

cc -O2 -I"$engine" "$here/gs1_engine_driver.c" "$engine/build/libgs1encoders.a" \
    -o "$scratch/gs1_engine_driver"

cargo build --quiet --release -p swt-domain --example gs1_driver
target=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}

echo "== Verdicts on $(grep -c . "$corpus") lines: valid (AI data), not_gs1, invalid"
"$target/release/examples/gs1_driver" verdicts | cut -f1 > "$scratch/swt"
"$scratch/gs1_engine_driver" "$corpus" verdicts | cut -f1 > "$scratch/engine"
cut -f1 "$corpus" | paste - "$scratch/swt" "$scratch/engine" | awk -F'\t' '
    { n++; if ($2 == $3) same++; else diff[$1 " swt=" $2 " engine=" $3]++ }
    END {
        printf "agree: %d of %d (%.2f%%)\n", same, n, 100 * same / n
        for (k in diff) printf "  differ: %5d  %s\n", diff[k], k
    }'

echo
echo "== Speed (best of $rounds rounds each)"
SWT_GS1_ENGINE_DRIVER="$scratch/gs1_engine_driver" SWT_GS1_BENCH_ROUNDS="$rounds" \
    cargo bench --quiet -p swt-domain --bench gs1_parse
