#!/usr/bin/env bash
# Builds Tandem and prints the core benchmark's figures (a few minutes).
# Extra arguments go to tandem_bench, e.g. --rows 100000 --backlog 200000.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh --target tandem_bench
exec ./build/bench/tandem_bench "$@"
