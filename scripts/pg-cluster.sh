#!/usr/bin/env bash
# A private PostgreSQL server for tests, living in one folder.
#
#   pg-cluster.sh start DIR   create the cluster in DIR on first use (initdb), start it, print its base URL
#   pg-cluster.sh stop DIR    stop it (fast shutdown: open sessions are cut); the data stays in DIR
#   pg-cluster.sh url DIR     print the base URL of the cluster in DIR, running or not
#
# The base URL is postgresql://tandem@127.0.0.1:PORT: role `tandem` (superuser, password 'tandem-test') and a
# database `tandem`, so the URL connects as it is; tests append /DBNAME. The server listens on 127.0.0.1 only, on
# a port free at the first start and kept for the cluster's life (DIR/port); its unix socket is in DIR. Every
# connection is trusted (local and 127.0.0.1). Settings for tests: max_connections=100, TimeZone UTC,
# wal_level=logical (room for 10 replication slots); fsync stays on. Server log: DIR/server.log.
# `start` on a running cluster only prints the URL; `stop` on a stopped one succeeds. Exit 1 with a message on
# stderr when something fails. As root the server runs as the `postgres` system user (initdb refuses root), which
# is given DIR when it cannot write there (e.g. a fresh mktemp -d folder).
set -euo pipefail
export LC_ALL=C

die() {
  echo "pg-cluster.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: pg-cluster.sh start|stop|url DIR" >&2
  exit 2
}

# The server's bin folder: the cluster's version when DIR holds one, else the newest installed (Debian:
# /usr/lib/postgresql/VERSION/bin), else the one on PATH.
server_bindir() {
  local d
  if [ -f "$DATA/PG_VERSION" ] && [ -x "/usr/lib/postgresql/$(cat "$DATA/PG_VERSION")/bin/pg_ctl" ]; then
    echo "/usr/lib/postgresql/$(cat "$DATA/PG_VERSION")/bin"
    return
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  die "no PostgreSQL server installed (looked in /usr/lib/postgresql/*/bin and PATH); run scripts/install-deps.sh (Debian package postgresql)"
}

# Runs a server program as the cluster's owner: the current user, or `postgres` when root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

is_running() {
  as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

print_url() {
  [ -s "$DIR/port" ] || die "$DIR/port is missing: $DIR holds no cluster made by this script"
  echo "postgresql://tandem@127.0.0.1:$(cat "$DIR/port")"
}

# A port nothing listens on now (by /proc/net/tcp*); `start` retries with another one if it is taken meanwhile.
pick_port() {
  local port hex i
  for i in $(seq 1 50); do
    port=$((20000 + RANDOM % 10000))
    hex=$(printf ':%04X' "$port")
    if ! awk -v h="$hex" '$4 == "0A" && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "found no free TCP port in 20000-29999"
}

write_port_config() {
  echo "$1" >"$DIR/port"
  cat >"$DATA/tandem-test.conf" <<EOF
# Written by scripts/pg-cluster.sh: a private server for Tandem's tests.
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$DIR'
EOF
}

init_cluster() {
  if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null ||
      die "running as root, but there is no 'postgres' system user to own the server (initdb refuses root); run scripts/install-deps.sh"
    if ! as_owner test -w "$DIR" -a -x "$DIR"; then
      [ -z "$(ls -A "$DIR")" ] || die "user postgres cannot write $DIR and it is not empty; use a new folder"
      chown postgres: "$DIR"
      chmod 700 "$DIR"
      as_owner test -x "$DIR" ||
        die "user postgres cannot reach $DIR (a parent folder is closed to it); use a folder under /tmp"
    fi
  fi
  # --no-sync: a test cluster is thrown away after an OS crash anyway; the server itself keeps fsync on.
  as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync --no-instructions \
    >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed in $DATA (output above)"; }
  cat >"$DATA/pg_hba.conf" <<EOF
# Written by scripts/pg-cluster.sh: trust, local and loopback only.
local all all trust
host all all 127.0.0.1/32 trust
EOF
  cat >>"$DATA/postgresql.conf" <<EOF

# Written by scripts/pg-cluster.sh: settings for tests.
max_connections = 100
timezone = 'UTC'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
include 'tandem-test.conf'
EOF
}

# pg_ctl start; on the first start a port taken meanwhile is replaced by another one.
start_server() {
  local first=$1 attempt out log_size
  for attempt in 1 2 3 4 5; do
    log_size=$(stat -c %s "$DIR/server.log" 2>/dev/null || echo 0)
    if out=$(as_owner "$BIN/pg_ctl" start -w -t 60 -D "$DATA" -l "$DIR/server.log" 2>&1); then
      return
    fi
    if [ "$first" = 1 ] && [[ $(tail -c +$((log_size + 1)) "$DIR/server.log") == *"could not bind"* ]]; then
      write_port_config "$(pick_port)"
      continue
    fi
    break
  done
  echo "$out" >&2
  echo "--- last lines of $DIR/server.log:" >&2
  tail -n 20 "$DIR/server.log" >&2 || true
  die "the PostgreSQL server in $DATA did not start (port $(cat "$DIR/port"))"
}

# The role and database of the base URL (idempotent).
create_tandem_role() {
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$DIR/port")" -U postgres -d postgres >/dev/null <<'EOF' ||
SELECT 'CREATE ROLE tandem LOGIN SUPERUSER PASSWORD ''tandem-test'''
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tandem')\gexec
SELECT 'CREATE DATABASE tandem OWNER tandem'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tandem')\gexec
EOF
    die "could not create role and database 'tandem' on the server in $DATA"
}

[ $# -eq 2 ] || usage
CMD=$1
[ -n "$2" ] || usage
case $CMD in
  start) mkdir -p "$2" ;;
  stop | url) [ -d "$2" ] || die "no folder $2" ;;
  *) usage ;;
esac
DIR=$(cd "$2" && pwd)
DATA=$DIR/data

case $CMD in
  start)
    BIN=$(server_bindir)
    first=0
    if [ ! -f "$DATA/PG_VERSION" ]; then
      [ ! -e "$DATA" ] || die "$DATA exists but holds no cluster (an interrupted initdb?); remove $DIR and start again"
      init_cluster
      write_port_config "$(pick_port)"
      first=1
    elif is_running; then
      print_url
      exit 0
    fi
    start_server "$first"
    create_tandem_role
    print_url
    ;;
  stop)
    [ -f "$DATA/PG_VERSION" ] || die "no cluster in $DIR (no $DATA/PG_VERSION); nothing to stop"
    BIN=$(server_bindir)
    if ! is_running; then
      echo "pg-cluster.sh: the server in $DATA is not running" >&2
      exit 0
    fi
    out=$(as_owner "$BIN/pg_ctl" stop -w -t 60 -m fast -D "$DATA" 2>&1) ||
      { echo "$out" >&2; die "could not stop the server in $DATA"; }
    ;;
  url)
    [ -f "$DATA/PG_VERSION" ] || die "no cluster in $DIR (no $DATA/PG_VERSION)"
    print_url
    ;;
esac
