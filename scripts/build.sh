#!/usr/bin/env bash
# Configures and builds Tandem into ./build (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(pwd)/scripts/install-deps.sh"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_WERROR=${TANDEM_WERROR:-ON} >/dev/null
cmake --build build -j"$(nproc)" "$@"
