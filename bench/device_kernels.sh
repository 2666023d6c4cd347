#!/usr/bin/env bash
# One device call for kernel work: build the CLI and the GPU tests (Release, sm_90), run the
# GPU tests, compute-sanitizer racecheck on a small subset, the correct/merge sweeps, the
# seed's kernels on the same shapes (bench/seed_join.py) and an ncu profile of decode calls.
#   usage: OUT=/some/dir bash bench/device_kernels.sh [ab]   (ab: also time CPATTN_CUDA_LEGACY=1)
set -uo pipefail
OUT=${OUT:-/tmp/cpattn-device}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
LOG="$OUT/log.txt"
BUILD=build-device
step() { echo; echo "=== $* ($(date +%T))" | tee -a "$LOG"; }
step build
cli11=()
[ -d .deps/include/CLI ] && cli11=(-DCPATTN_CLI11_INCLUDE_DIR="$PWD/.deps/include")
cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCPATTN_PYTHON=OFF "${cli11[@]}" >>"$LOG" 2>&1 &&
  cmake --build $BUILD -j16 --target cpattn_cli test_cuda >>"$LOG" 2>&1 || { tail -60 "$LOG"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee -a "$LOG"
CLI=$BUILD/tools/cpattn/cpattn
step test_cuda
$BUILD/tests/test_cuda >"$OUT/test_cuda.txt" 2>&1; echo "test_cuda rc=$?" | tee -a "$LOG"
grep -E "PASSED|FAILED|SKIPPED" "$OUT/test_cuda.txt" | head -20 | tee -a "$LOG"
step racecheck
timeout 120 compute-sanitizer --tool racecheck --error-exitcode 9 $BUILD/tests/test_cuda \
  --gtest_filter='Matrix/CudaMerge.*/1?:Matrix/CudaCorrect.*/2?:Matrix/CudaPack.*/1?:Matrix/CudaUnpack.*/2?:CudaGraph.*' >"$OUT/racecheck.txt" 2>&1
echo "racecheck rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED' "$OUT/racecheck.txt" | tr '\n' ' ')" | tee -a "$LOG"
step decode-ab
DEC=(-B 1 16 -H 32 -D 128 -N 2 4)
for k in new legacy; do
  [ "$k" = legacy ] && [ "${1:-}" != ab ] && continue
  for op in correct merge; do
    if [ $k = legacy ]; then export CPATTN_CUDA_LEGACY=1; else unset CPATTN_CUDA_LEGACY; fi
    echo "--- $k $op" | tee -a "$LOG"
    $CLI bench --op $op --device cuda -n 50 "${DEC[@]}" 2>&1 | tail -6 | tee -a "$LOG"
    $CLI bench --op $op --device cuda -n 50 -B 1 64 2048 32768 -H 128 -D 512 -N 8 2>&1 | tail -6 | tee -a "$LOG"
    $CLI bench --op $op --device cuda -n 50 -B 32768 -H 32 -D 128 -N 8 2>&1 | tail -3 | tee -a "$LOG"
  done
done
unset CPATTN_CUDA_LEGACY
step ncu
timeout 60 ncu --clock-control none --kernel-name regex:merge --launch-count 4 \
  --section SpeedOfLight --section LaunchStats --section WarpStateStats \
  $CLI bench --op correct --device cuda -n 1 -w 0 -c 0 -B 1 -H 32 -D 128 -N 2 >"$OUT/ncu.txt" 2>&1
echo "ncu rc=$?" | tee -a "$LOG"
step sweep
for op in correct merge; do
  timeout 150 $CLI bench --op $op --device cuda -n 50 --json "$OUT/bench_$op.json" >>"$OUT/sweep.txt" 2>&1
done
step seed
if [ -f .peer/seed_triton_bench.py ]; then
  PYTHONPATH=.peer timeout 200 python3 bench/seed_join.py "$OUT/bench_correct.json" "$OUT/bench_merge.json" >"$OUT/table.md" 2>>"$LOG"
  tail -60 "$OUT/table.md"
fi
step done
