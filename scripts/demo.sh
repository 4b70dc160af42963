#!/usr/bin/env bash
# The main job on the embedded default: build Tandem and run `tandem demo`
# (example legacy + modern SQLite databases in ./tandem-demo, synced both ways).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh --target tandem
exec ./build/tandem demo --dir "${TANDEM_DEMO_DIR:-tandem-demo}" "$@"
