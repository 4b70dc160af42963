#!/usr/bin/env bash
# Builds Tandem and prints the benchmarks' figures (a few minutes): the core one (SQLite -> SQLite, tandem_bench),
# then the PostgreSQL one (PostgreSQL -> PostgreSQL, tandem_pg_bench) on a private server that this script starts
# with scripts/pg-cluster.sh in a temporary folder and stops at the end.
#
#   ./scripts/bench.sh                          every figure
#   ./scripts/bench.sh --only latency           one SQLite figure (throughput|conflicts|latency|overhead|backlog|writer|
#                                               kinds)
#   ./scripts/bench.sh --only pg                the PostgreSQL figures only
#   ./scripts/bench.sh --only pg-latency        one PostgreSQL figure (pg-throughput|pg-latency|pg-overhead|pg-kinds)
#   ./scripts/bench.sh --only all-kinds         the kinds figures of both (kinds and pg-kinds)
#
# The kinds figures (issue 13): inserts, updates, deletes and a 70/20/10 update/insert/delete mix, in each
# direction; SQLite: Tandem beside the raw target rate and the floor with key-map rows; PostgreSQL: Tandem beside
# native logical replication, Bucardo and the raw target rate; idle CPU of `tandem run` (and its sessions).
#   --kinds insert,update,delete,mixed   which kinds (both benchmarks; default all)
#   --directions legacy,modern           which directions: legacy = legacy->modern, modern = modern->legacy
#   --idle-seconds S                     how long idle CPU is sampled (default 10; 0: not measured)
#   --kinds-rows N                       changes per SQLite kind and direction (default 100,000)
#   --pg-rows N                          changes per PostgreSQL kind and direction (default 100,000; also the
#                                        pg throughput figure's rows)
#   --no-bucardo, --no-logical           leave that peer out of the PostgreSQL kinds
# Bucardo (Debian package bucardo, and PL/Perl for the server) is installed with apt-get when missing and this runs
# as root; otherwise the PostgreSQL kinds say that Bucardo was skipped, and why.
#
# --rows N and --latency-seconds S go to both benchmarks; --backlog N to the SQLite one only; --pg-OPTION goes to
# the PostgreSQL one as --OPTION (e.g. --pg-rows 50000, --pg-overhead-seconds 3, --pg-perf /tmp/perf.data).
# TANDEM_BENCH_PG_URL=postgresql://USER@HOST:PORT (a superuser) uses that server instead of starting one.
# TANDEM_BUILD_DIR=DIR builds there with cmake instead of ./build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

only="" common=() sqlite_args=() pg_args=() bucardo=1
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --backlog | --kinds-rows) sqlite_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --kinds | --directions | --idle-seconds) common+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --no-bucardo) bucardo=0; pg_args+=("$1"); shift ;;
    --no-logical) pg_args+=("$1"); shift ;;
    --pg-*) pg_args+=("--${1#--pg-}" "${2:?$1 needs a value}"); shift 2 ;;
    *) common+=("$1"); shift ;;
  esac
done
run_sqlite=1 run_pg=1 pg_kinds=1
case $only in
  "") ;;
  pg) run_sqlite=0 ;;
  all-kinds) sqlite_args+=(--only kinds); pg_args+=(--only kinds) ;;
  pg-*) run_sqlite=0; pg_args+=(--only "${only#pg-}"); [ "$only" = pg-kinds ] || pg_kinds=0 ;;
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

# Bucardo for the PostgreSQL kinds: installed when missing (as root), else skipped with the reason.
# PL/Perl is pinned to the installed server's version, so apt-get does not upgrade the server under running clusters.
skip_bucardo() {
  echo "bench.sh: Bucardo will be skipped: $1" >&2
  export TANDEM_BENCH_BUCARDO_SKIPPED="$1"
}
ensure_bucardo() {
  local major="" plperl=() missing=()
  command -v bucardo >/dev/null || missing+=(bucardo)
  if [ -z "${TANDEM_BENCH_PG_URL:-}" ]; then  # the private server: the newest installed (scripts/pg-cluster.sh)
    major=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$major" ] && [ ! -f "/usr/lib/postgresql/$major/lib/plperl.so" ]; then
      local version
      version=$(dpkg-query -W -f='${Version}' "postgresql-$major" 2>/dev/null || true)
      plperl=("postgresql-plperl-$major${version:+=$version}")
      missing+=("${plperl[@]}")
    fi
  fi
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    skip_bucardo "not installed (missing: ${missing[*]}), and bench.sh is not root with apt-get to install it; run: apt-get install -y ${missing[*]}"
    return
  fi
  echo "bench.sh: installing ${missing[*]} for the Bucardo figures (apt-get)" >&2
  local packages=(bucardo "${plperl[@]}")
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >/tmp/tandem-bench-apt.log 2>&1 &&
    ! { apt-get update -q >>/tmp/tandem-bench-apt.log 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >>/tmp/tandem-bench-apt.log 2>&1; }; then
    tail -n 5 /tmp/tandem-bench-apt.log >&2
    skip_bucardo "apt-get install ${packages[*]} failed (log: /tmp/tandem-bench-apt.log)"
  fi
}
if [ "$run_pg" = 1 ] && [ "$pg_kinds" = 1 ] && [ "$bucardo" = 1 ]; then
  ensure_bucardo
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
