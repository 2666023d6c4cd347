#!/usr/bin/env bash
# One call on the GPU machine: build (Release, sm_90), GPU tests, compute-sanitizer, verify,
# demo (in-process ranks and NCCL), the benchmark sweeps and vLLM's Triton functions, all
# in the same run. Logs land in $OUT (at most 8 files come back).
#   usage: OUT=/some/dir bash bench/device_run.sh [tests|bench|all]
set -uo pipefail
MODE=${1:-all}
source bench/device_env.sh
BUILD=build-device

step build
build_device $BUILD
CLI=$BUILD/tools/cpattn/cpattn

if [ "$MODE" != bench ] && [ "$MODE" != debug ]; then
step ctest
ctest --test-dir $BUILD -j8 --output-on-failure >>"$LOG" 2>&1
tail -4 "$LOG"
grep -c "Skipped" $BUILD/Testing/Temporary/LastTest.log | sed 's/^/skipped test lines: /'

SAN_TIMEOUT=100 bash bench/device_sanitize.sh \
  'Matrix/CudaMerge.*/1*:Matrix/CudaCorrect.*/2*:Matrix/CudaPack.*/1*:Matrix/CudaUnpack.*/2*:CudaPackBounds.*:CudaGraph.*:Ranks/CudaCp.*/1' \
  $BUILD/tests/test_cuda

step verify
$CLI verify --device cuda 2>&1 | tee -a "$LOG" | tail -3

step demo
$CLI demo --device cuda 2>&1 | tee -a "$LOG"
$CLI demo --device cuda -N 8 -B 64 -H 128 -D 512 -S 300 2>&1 | tee -a "$LOG" | tail -5
mpirun --allow-run-as-root -np 1 -x NCCL_NVLS_ENABLE $CLI demo --device cuda --comm nccl -N 1 2>&1 | tee -a "$LOG" | tail -6
mpirun --allow-run-as-root -np 1 -x NCCL_NVLS_ENABLE $CLI bench --op cp-rs --device cuda --comm nccl -n 20 2>&1 | tee -a "$LOG" | tail -14

fi

if [ "$MODE" = debug ]; then
  step debug
  cuda-gdb -batch -ex run -ex bt --args $BUILD/tests/test_cuda --gtest_filter='CudaGraph.Capture*' 2>&1 | tail -30
fi

if [ "$MODE" != tests ] && [ "$MODE" != debug ]; then
step bench
: >"$OUT/bench.txt"
for op in correct merge pack unpack; do
  timeout 125 $CLI bench --op $op --device cuda -n 50 --json "$OUT/bench_$op.json" 2>&1 | tee -a "$OUT/bench.txt" | tail -3
done

step vllm_triton
if [ -f .peer/seed_triton_bench.py ]; then
  (cd .peer && OUT="$OUT" timeout 300 python3 seed_triton_bench.py) >"$OUT/vllm_triton.txt" 2>&1
  tail -30 "$OUT/vllm_triton.txt"
fi
fi
step done
