#!/usr/bin/env bash
# Sets up and runs the logferry pipeline locally on generated sample data, then shows the result.
# Everything lives under .quickstart/ in the checkout; nothing is installed system-wide but the
# Debian packages the project needs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash scripts/install-deps.sh
cmake -S . -B build/quickstart -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLF_TESTS=OFF >/dev/null
cmake --build build/quickstart -j "$(nproc)"

exec python3 scripts/quickstart.py --build build/quickstart --dir "$top/.quickstart"
