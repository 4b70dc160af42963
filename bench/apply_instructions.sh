#!/usr/bin/env bash
# Instructions (valgrind callgrind, repeatable whatever the machine's load) of `tandem run --once` draining
# 3,000 legacy inserts, then 3,000 updates, SQLite -> SQLite with an example mapping. Compare two builds:
#   bench/apply_instructions.sh build/tandem examples        # this tree
#   bench/apply_instructions.sh /tmp/base/build/tandem /tmp/base/examples   # another checkout (git worktree)
set -euo pipefail
bin=${1:?tandem binary} examples=${2:?examples folder}
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
mkdir "$d/data"; cp "$examples/tandem.yaml" "$d/"
sqlite3 "$d/data/legacy.db" < "$examples/legacy_schema.sql"; sqlite3 "$d/data/modern.db" < "$examples/modern_schema.sql"
"$bin" install -c "$d/tandem.yaml" > /dev/null 2>&1
sqlite3 "$d/data/legacy.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<3000) INSERT INTO CUSTMAST(CNAME, EMAIL, STAT, BAL_CENTS) SELECT 'LAST'||i||', FIRST', 'e'||i||'@x', 'A', i FROM n;"
run() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" run --once -c "$d/tandem.yaml" --log-level warn 2>&1 | sed -n 's/.*Collected : //p'; }
echo "3000 inserts: $(run) instructions"
sqlite3 "$d/data/legacy.db" "UPDATE CUSTMAST SET BAL_CENTS = BAL_CENTS + 1, EMAIL = EMAIL || 'x';"
echo "3000 updates: $(run) instructions"
