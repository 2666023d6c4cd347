#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, CPU backend) and runs each for
# ${FUZZ_SECONDS:-60} s over its corpus in fuzz/corpus/<target> (new inputs stay in the
# build dir; the repo's corpus is only read). A finding stops the run with the input saved.
#   usage: bash scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${FUZZ_SECONDS:-60}}
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "cpattn: installing clang and libFuzzer"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-rt-dev >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang "libclang-rt-$(clang --version | grep -o 'version [0-9]*' | grep -o '[0-9]*')-dev" >/dev/null
fi
BUILD=build-fuzz
cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCPATTN_FUZZ=ON -DCPATTN_SANITIZE=address,undefined -DCPATTN_CUDA=OFF -DCPATTN_PYTHON=OFF -DCPATTN_MPI=OFF \
  -DCPATTN_OPENMP=OFF -DCPATTN_BUILD_TESTS=OFF -DCPATTN_BUILD_TOOLS=OFF >/dev/null
cmake --build $BUILD -j "$(nproc)" --target fuzz_merge fuzz_pack fuzz_validation fuzz_cp
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in fuzz_merge fuzz_pack fuzz_validation fuzz_cp; do
  mkdir -p "$BUILD/corpus/$t"
  echo "=== $t: ${secs} s"
  rc=0
  "$BUILD/fuzz/$t" -max_total_time="$secs" -max_len=256 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$BUILD/$t-" "$BUILD/corpus/$t" "fuzz/corpus/$t" >"$BUILD/$t.log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|runtime error|ERROR|SUMMARY|what\(\)" "$BUILD/$t.log" | head -8
  if [ $rc -ne 0 ]; then
    tail -40 "$BUILD/$t.log"
    echo "cpattn: $t found a failing input (saved as $BUILD/$t-*); reproduce: $BUILD/fuzz/$t <file>"
    exit 1
  fi
done
