#!/usr/bin/env bash
# Builds cpattn (scripts/build.sh: it says what it does, the compiler's output only when a
# step fails) and runs `cpattn demo` (arguments are passed to the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
CPATTN_QUIET=1 bash scripts/build.sh
echo "cpattn: running cpattn demo $*"
exec "${BUILD_DIR:-build}/tools/cpattn/cpattn" demo "$@"
