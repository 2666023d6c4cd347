#!/usr/bin/env bash
# Builds cpattn and runs every test (GPU tests skip themselves, saying why, without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" -j "$(nproc)" --output-on-failure
