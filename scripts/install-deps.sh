#!/usr/bin/env bash
# Installs Tandem's build and test dependencies from Debian 12 packages.
# Idempotent and quick when everything is present. Needs root (or sudo).
set -euo pipefail
# postgresql (15 on Debian 12): the server scripts/pg-cluster.sh runs for tests; libpq-dev: the client library.
PACKAGES=(build-essential cmake pkg-config sqlite3 libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev
          libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev postgresql libpq-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
