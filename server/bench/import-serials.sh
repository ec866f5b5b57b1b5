#!/usr/bin/env bash
# Benchmark of `swt import serials`: generates an N-line CSV (default 1,000,000 serials
# over 5 GTINs and 50 lots) in /tmp/swt-bench, imports it into a fresh database, then
# imports it again (every line an update), and prints the summary lines with timings.
#
#   bash server/bench/import-serials.sh                      # SQLite
#   bash server/bench/import-serials.sh postgres://postgres@127.0.0.1/swt_bench
#
# PostgreSQL: the database named in the URL is dropped and created again (the URL's user
# must be allowed to), so point it at a scratch database. N=… sets the line count.
# Not part of `cargo test`: it takes a minute and its figures depend on the machine.
set -euo pipefail

N=${N:-1000000}
URL=${1:-sqlite:///tmp/swt-bench/swt.db}
DIR=/tmp/swt-bench
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$DIR"

cargo build --release --quiet -p swt-server --manifest-path "$ROOT/Cargo.toml"
SWT="${CARGO_TARGET_DIR:-$ROOT/target}/release/swt"

CSV="$DIR/serials-$N.csv"
if [ ! -s "$CSV" ]; then
  # Valid GTIN-14s (check digits computed here, never hard-coded wrong); serials are
  # 12 digits, lots L0000..L0049, expiries spread over 2027–2028.
  awk -v n="$N" 'function cd(s,  i,t,w){t=0;w=3;for(i=length(s);i>=1;i--){t+=substr(s,i,1)*w;w=4-w};return (10-t%10)%10}
    BEGIN{
      for(g=0;g<5;g++){b=sprintf("0030000000%03d",g); gt[g]=b cd(b)}
      print "gtin,serial,lot,expiry"
      for(i=0;i<n;i++){
        g=i%5; lot=int(i/(n/50)+0); if(lot>49)lot=49
        printf "%s,%012d,L%04d,%02d%02d%02d\n", gt[g], i, lot, 27+int(lot/25), 1+lot%12, 1+lot%28
      }
    }' > "$CSV.tmp"
  mv "$CSV.tmp" "$CSV"
fi
echo "CSV: $CSV ($(wc -l < "$CSV") lines, $(du -h "$CSV" | cut -f1))"

case "$URL" in
  sqlite://*)
    F=${URL#sqlite://}; F=${F%%\?*}
    rm -f "$F" "$F-wal" "$F-shm"
    ;;
  postgres://*|postgresql://*)
    NAME=${URL##*/}; NAME=${NAME%%\?*}
    ADMIN=${URL%/*}/postgres
    psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS \"$NAME\"" -c "CREATE DATABASE \"$NAME\""
    ;;
  *) echo "expected sqlite://FILE or postgres://…/DB" >&2; exit 2 ;;
esac

# An organisation to import into: the demo seed makes one. `swt demo` serves after
# seeding, so it is started on a free port and stopped once it answers.
"$SWT" demo --listen 127.0.0.1:0 --database-url "$URL" --log-level warn > "$DIR/demo.out" 2>&1 &
DEMO=$!
for _ in $(seq 1 600); do
  grep -q "Server: http" "$DIR/demo.out" 2>/dev/null && break
  sleep 0.1
done
kill "$DEMO"
wait "$DEMO" || true

echo "== first import (inserts), $URL"
/usr/bin/time -f "wall %e s, max RSS %M KiB" "$SWT" import serials "$CSV" --database-url "$URL" --log-level warn
echo "== second import of the same file (every line an update)"
/usr/bin/time -f "wall %e s, max RSS %M KiB" "$SWT" import serials "$CSV" --database-url "$URL" --log-level warn
