#!/usr/bin/env bash
# Installs what is missing (scripts/bootstrap.sh), then configures and builds cpattn (Release)
# into ${BUILD_DIR:-build}, the Python extension for the project's .venv; extra arguments go to
# CMake. Says what it does; with CPATTN_QUIET=1 CMake's and the compiler's output is kept in
# $BUILD_DIR/cpattn-build.log and shown only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "cpattn: $*"; }
bash scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
mkdir -p "$BUILD_DIR"
log="$BUILD_DIR/cpattn-build.log"
# Runs "$@" into the log (and the terminal unless CPATTN_QUIET=1); on failure shows what it said.
step() {
  if [ "${CPATTN_QUIET:-0}" = 1 ]; then
    local status=0
    "$@" >"$log" 2>&1 || status=$?
    if [ $status -ne 0 ]; then
      tail -n 200 "$log" >&2
      say "failed: $* (all of its output: $log)"
      return $status
    fi
  else
    "$@" 2>&1 | tee "$log"
  fi
}

# CMake and pytest use the venv's Python, where bootstrap.sh put nanobind, numpy and pytest
# (an explicit -DPython_EXECUTABLE=... or -DCPATTN_PYTHON=OFF among the arguments wins)
python_args=()
if [ -x .venv/bin/python ] && [[ " $* " != *" -DPython_EXECUTABLE="* && " $* " != *" -DCPATTN_PYTHON=OFF "* ]]; then
  python_args=(-DPython_EXECUTABLE="$PWD/.venv/bin/python")
fi
say "configuring $BUILD_DIR/ (CMake, Release) ..."
step cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${python_args[@]}" "$@"

# CPU seconds of a first build, measured with GCC 12 and nvcc 13: the C++ library, its tests and
# the CLI 90; the Python extension 30; the CUDA kernels for two architectures and their tests 100
summary=$(grep -o "CUDA=[A-Z]* .*python=[A-Z]*" "$log" | tail -n 1 || true)
cpu_s=90
[[ $summary == *"python=ON"* ]] && cpu_s=$((cpu_s + 30))
[[ $summary == *"CUDA=ON"* ]] && cpu_s=$((cpu_s + 100))
cores=$(nproc)
minutes=$(( (cpu_s + cores * 30) / (cores * 60) ))
[ "$minutes" -ge 1 ] || minutes=1
if [ -x "$BUILD_DIR/tools/cpattn/cpattn" ]; then
  say "building $BUILD_DIR/ (only what changed; a first build takes about $minutes min on $cores cores) ..."
else
  say "building $BUILD_DIR/ (this takes about $minutes min on $cores cores: ${summary:-see the configure output}) ..."
fi
start=$(date +%s)
step cmake --build "$BUILD_DIR" -j "$cores"
say "built $BUILD_DIR/ in $(( $(date +%s) - start )) s"
