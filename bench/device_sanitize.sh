#!/usr/bin/env bash
# compute-sanitizer (memcheck, racecheck, initcheck, synccheck) over a GPU test binary: the
# one sanitizer entry of the device scripts. The tools run at once on the one GPU (one after
# the other with SAN_SERIAL=1, for multi-process runs).
#   usage: OUT=/dir [SAN_TIMEOUT=240] [SAN_TOOLS="memcheck racecheck"] [SAN_SERIAL=1]
#          bash bench/device_sanitize.sh [gtest filter] [test binary] [launcher ...]
#   filter   default: every test but the >2^31-element ones (20 s each natively, hours under
#            memcheck)
#   binary   default: build-san/tests/test_cuda, built here (Release, sm_90)
#   launcher what runs compute-sanitizer, e.g. "mpirun -np 2" for test_nccl
# racecheck also leaves out the tests whose ranks are threads of one process (LocalComm on
# one GPU: a rank waits at a host barrier for a peer whose launch racecheck holds back); those
# run under the other three tools, and their kernels are the ones the other tests cover.
# One summary, appended to $OUT/sanitize.txt and printed; each tool's log next to the binary.
set -uo pipefail
source bench/device_env.sh
FILTER=${1:-'-CudaLargeSizes.*'}
TESTS=${2:-}
LAUNCHER=("${@:3}")
if [ -z "$TESTS" ]; then
  BUILD=build-san
  step build
  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCPATTN_BUILD_TOOLS=OFF -DCPATTN_PYTHON=OFF \
    "${cli11[@]}" >>"$LOG" 2>&1 && cmake --build $BUILD -j16 --target test_cuda >>"$LOG" 2>&1 || { tail -40 "$LOG"; exit 1; }
  TESTS=$BUILD/tests/test_cuda
fi
RACE_EXCLUDED='Ranks/CudaCp.*:CudaDeterminism.*'
case "$FILTER" in  # gtest filters: POSITIVE[-NEGATIVE], patterns ':'-separated
  *-*) RACE_FILTER="$FILTER:$RACE_EXCLUDED" ;;
  *) RACE_FILTER="$FILTER-$RACE_EXCLUDED" ;;
esac
TOOLS=(${SAN_TOOLS:-memcheck racecheck initcheck synccheck})
log_of() { echo "$(dirname "$TESTS")/san_$1.txt"; }

step "compute-sanitizer ${TOOLS[*]} on $TESTS ($FILTER)"
run_tool() {
  local f=$FILTER
  [ "$1" = racecheck ] && f=$RACE_FILTER
  timeout "${SAN_TIMEOUT:-240}" "${LAUNCHER[@]}" compute-sanitizer --tool "$1" --error-exitcode 9 "$TESTS" \
    --gtest_filter="$f" >"$(log_of "$1")" 2>&1
  echo $? >"$(log_of "$1").rc"
}
for tool in "${TOOLS[@]}"; do
  if [ "${SAN_SERIAL:-0}" = 1 ]; then run_tool "$tool"; else run_tool "$tool" & fi
done
wait
for tool in "${TOOLS[@]}"; do
  f=$(log_of "$tool")
  {
    echo "## $tool: rc $(cat "$f.rc"), tests run $(grep -c '^\[ RUN' "$f"), ok $(grep -c '^\[       OK' "$f"), skipped $(grep -c '^\[  SKIPPED' "$f")"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|^\[  PASSED|^\[  FAILED|^=========  (Invalid|Race|Uninitialized|Barrier|Program hit)" "$f" | sort | uniq -c | head -20
    grep -qE "ERROR SUMMARY|RACECHECK SUMMARY" "$f" || echo "no summary (timed out): last test $(grep '^\[ RUN' "$f" | tail -1)"
  } | tee -a "$OUT/sanitize.txt" "$LOG"
done
step done
