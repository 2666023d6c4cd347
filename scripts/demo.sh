#!/usr/bin/env bash
# Builds cpattn and runs `cpattn demo` (arguments are passed to the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
exec "${BUILD_DIR:-build}/tools/cpattn/cpattn" demo "$@"
