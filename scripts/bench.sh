#!/usr/bin/env bash
# Builds Tandem and prints the benchmarks' figures (a few minutes): the core one (SQLite -> SQLite, tandem_bench),
# then the PostgreSQL one (PostgreSQL -> PostgreSQL, tandem_pg_bench) on a private server that this script starts
# with scripts/pg-cluster.sh in a temporary folder and stops at the end.
#
#   ./scripts/bench.sh                          every figure
#   ./scripts/bench.sh --only latency           one SQLite figure (throughput|conflicts|latency|overhead|backlog|writer)
#   ./scripts/bench.sh --only pg                the PostgreSQL figures only
#   ./scripts/bench.sh --only pg-latency        one PostgreSQL figure (pg-throughput|pg-latency|pg-overhead)
#
# --rows N and --latency-seconds S go to both benchmarks; --backlog N to the SQLite one only; --pg-OPTION goes to
# the PostgreSQL one as --OPTION (e.g. --pg-rows 50000, --pg-overhead-seconds 3, --pg-perf /tmp/perf.data).
# TANDEM_BENCH_PG_URL=postgresql://USER@HOST:PORT (a superuser) uses that server instead of starting one.
# TANDEM_BUILD_DIR=DIR builds there with cmake instead of ./build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

only="" common=() sqlite_args=() pg_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --backlog) sqlite_args+=("$1" "${2:?--backlog needs a value}"); shift 2 ;;
    --pg-*) pg_args+=("--${1#--pg-}" "${2:?$1 needs a value}"); shift 2 ;;
    *) common+=("$1"); shift ;;
  esac
done
run_sqlite=1 run_pg=1
case $only in
  "") ;;
  pg) run_sqlite=0 ;;
  pg-*) run_sqlite=0; pg_args+=(--only "${only#pg-}") ;;
  *) run_pg=0; sqlite_args+=(--only "$only") ;;
esac

build_dir=${TANDEM_BUILD_DIR:-build}
bin_dir=$build_dir/bench
[[ $bin_dir = /* ]] || bin_dir=./$bin_dir
if [ "$build_dir" = build ]; then
  ./scripts/build.sh --target tandem_bench tandem_pg_bench
else
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j"$(nproc)" --target tandem_bench tandem_pg_bench
fi

# The PostgreSQL server first, so a server that cannot start fails the run before the long SQLite part.
if [ "$run_pg" = 1 ] && [ -z "${TANDEM_BENCH_PG_URL:-}" ]; then
  pg_cluster=$(pwd)/scripts/pg-cluster.sh
  pg_dir=$(mktemp -d /tmp/tandem-bench-pg-XXXXXX)
  stop_pg() {
    local rc=$?
    if [ -f "$pg_dir/data/PG_VERSION" ] && ! "$pg_cluster" stop "$pg_dir"; then
      echo "bench.sh: could not stop the PostgreSQL server; stop it with: $pg_cluster stop $pg_dir" >&2
    else
      rm -rf "$pg_dir"
    fi
    exit "$rc"
  }
  trap stop_pg EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  TANDEM_BENCH_PG_URL=$("$pg_cluster" start "$pg_dir") ||
    { echo "bench.sh: the PostgreSQL server did not start (see above)" >&2; exit 1; }
  export TANDEM_BENCH_PG_URL
fi

if [ "$run_sqlite" = 1 ]; then
  "$bin_dir/tandem_bench" ${common[@]+"${common[@]}"} ${sqlite_args[@]+"${sqlite_args[@]}"}
fi
if [ "$run_pg" = 1 ]; then
  [ "$run_sqlite" = 1 ] && echo
  "$bin_dir/tandem_pg_bench" ${common[@]+"${common[@]}"} ${pg_args[@]+"${pg_args[@]}"}
fi
