#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, starts a private PostgreSQL server (scripts/pg-cluster.sh,
# in a temporary folder), runs every test with ctest, stops the server; exits with ctest's code.
# Tests find the server through TANDEM_TEST_PG_URL (postgresql://tandem@127.0.0.1:PORT, no database) and
# TANDEM_TEST_PG_DIR (its folder). If it cannot start, PostgreSQL tests are skipped with a warning, or, when
# CI=true, this script fails. TANDEM_KEEP_TEST_DIRS=1 keeps the server's folder (data and server.log).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh

pg_cluster=$(pwd)/scripts/pg-cluster.sh
pg_dir=$(mktemp -d /tmp/tandem-pg-XXXXXX)
stop_pg() {
  local rc=$? keep=${TANDEM_KEEP_TEST_DIRS:-}
  if [ -f "$pg_dir/data/PG_VERSION" ] && ! "$pg_cluster" stop "$pg_dir"; then
    echo "test.sh: could not stop the PostgreSQL test server; stop it with: $pg_cluster stop $pg_dir" >&2
    keep=1
  fi
  if [ -n "$keep" ]; then
    echo "test.sh: PostgreSQL test server folder kept: $pg_dir" >&2
  else
    rm -rf "$pg_dir"
  fi
  exit "$rc"
}
trap stop_pg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if TANDEM_TEST_PG_URL=$("$pg_cluster" start "$pg_dir"); then
  export TANDEM_TEST_PG_URL TANDEM_TEST_PG_DIR=$pg_dir
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: the PostgreSQL test server did not start (see above); CI=true, so PostgreSQL tests may not be skipped" >&2
  exit 1
else
  echo "test.sh: WARNING: the PostgreSQL test server did not start (see above); PostgreSQL tests will be SKIPPED" >&2
  unset TANDEM_TEST_PG_URL TANDEM_TEST_PG_DIR
fi

cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"
