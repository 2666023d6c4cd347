#!/usr/bin/env bash
# One device call for kernel work: build the CLI and the GPU tests (Release, sm_90), run the
# GPU tests, compute-sanitizer (memcheck, racecheck, initcheck, synccheck) on a subset, decode
# rows with and without --pdl, the correct/merge sweeps, vLLM's Triton functions on the same
# shapes (bench/vllm_join.py) and an ncu profile of decode calls.
#   usage: OUT=/some/dir [VARIANTS="-maxrregcount=64;-Xptxas -O2"] [SKIP="sanitize sweep"] bash bench/device_kernels.sh
# VARIANTS: ';'-separated CUDA flags of further builds of the CLI (e.g. "-maxrregcount=64"),
# each timed against the first on the decode and large shapes (an A/B in one call).
# SKIP: steps to leave out (test, sanitize, ab, pdl, ncu, sweep).
set -uo pipefail
source bench/device_env.sh
configure() {  # build dir, CUDA flags
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCPATTN_PYTHON=OFF \
    -DCMAKE_CUDA_FLAGS="$2" "${cli11[@]}" >>"$LOG" 2>&1
}
step build
IFS=';' read -r -a variants <<<"${VARIANTS:-}"
for i in "${!variants[@]}"; do  # in the background, next to the main build
  (configure build-device-v$i "${variants[$i]}" && cmake --build build-device-v$i -j8 --target cpattn_cli >>"$LOG" 2>&1) &
done
configure build-device "" && cmake --build build-device -j16 --target cpattn_cli test_cuda >>"$LOG" 2>&1 ||
  { tail -60 "$LOG"; exit 1; }
wait
CLIS=(build-device/tools/cpattn/cpattn)
for i in "${!variants[@]}"; do
  cli=build-device-v$i/tools/cpattn/cpattn
  [ -x $cli ] && CLIS+=($cli) && echo "variant $i: ${variants[$i]} -> $cli" | tee -a "$LOG"
done
skip() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee -a "$LOG"
CLI=${CLIS[0]}
TESTS=build-device/tests/test_cuda
if ! skip test; then
step test_cuda
$TESTS >"$OUT/test_cuda.txt" 2>&1; echo "test_cuda rc=$?" | tee -a "$LOG"
grep -E "PASSED|FAILED|SKIPPED" "$OUT/test_cuda.txt" | head -20 | tee -a "$LOG"
fi
if ! skip sanitize; then
SAN_TIMEOUT=150 bash bench/device_sanitize.sh \
  'CudaMergeRows.*:*CudaPdl*:Matrix/CudaMerge.*/1?:Matrix/CudaCorrect.*/2?:Matrix/CudaPack.*/1?:Matrix/CudaUnpack.*/2?:CudaGraph.*' \
  $TESTS
fi
rows() { grep -E '^ +(correct|merge) |OK|WRONG|rror'; }
AB=${AB_FLAGS:-}  # e.g. "-c 0": no reference check in the A/B rows
skip ab || step decode-and-large
skip ab || for cli in "${CLIS[@]}"; do
  for op in correct merge; do
    echo "--- $cli $op" | tee -a "$LOG"
    $cli bench --op $op --device cuda -n 50 $AB -B 1 16 -H 32 -D 128 -N 1 2 3 4 8 16 2>&1 | rows | tee -a "$LOG"
    $cli bench --op $op --device cuda -n 50 $AB -B 1 64 2048 -H 128 -D 512 -N 8 2>&1 | rows | tee -a "$LOG"
    $cli bench --op $op --device cuda -n 50 $AB -B 32768 -H 32 -D 128 -N 8 2>&1 | rows | tee -a "$LOG"
    $cli bench --op $op --device cuda -n 50 $AB -B 2048 -H 128 -D 576 -N 4 2>&1 | rows | tee -a "$LOG"
    $cli bench --op $op --device cuda -n 50 $AB -B 8192 -H 32 -D 64 96 256 -N 3 16 2>&1 | rows | tee -a "$LOG"
    $cli bench --op $op --device cuda -n 50 $AB -B 32768 -H 16 -D 128 -N 2 2>&1 | rows | tee -a "$LOG"
  done
done
if ! skip pdl; then
step pdl  # ordinary launches, then programmatic dependent launches, same CLI, same shapes
for op in correct merge; do
  for pdl in "" --pdl; do
    echo "--- $CLI $op $pdl" | tee -a "$LOG"
    $CLI bench --op $op --device cuda -n 50 $AB $pdl -B 1 8 16 64 -H 32 -D 128 -N 2 4 8 2>&1 | rows | tee -a "$LOG"
    $CLI bench --op $op --device cuda -n 50 $AB $pdl -B 1 8 64 2048 -H 128 -D 512 -N 8 2>&1 | rows | tee -a "$LOG"
  done
done
fi
if ! skip ncu; then
step ncu
timeout 60 ncu --clock-control none --kernel-name regex:merge --launch-count 4 \
  --section SpeedOfLight --section LaunchStats --section WarpStateStats --section InstructionStats \
  $CLI bench --op correct --device cuda -n 1 -w 0 -c 0 -B 1 -H 32 -D 128 -N 2 >"$OUT/ncu.txt" 2>&1
echo "ncu rc=$?" | tee -a "$LOG"
fi
skip sweep && { step done; exit 0; }
step sweep
for op in correct merge; do
  timeout 150 $CLI bench --op $op --device cuda -n 50 --json "$OUT/bench_$op.json" >>"$OUT/sweep.txt" 2>&1
done
pdl_json=()
if ! skip pdl; then  # the correct sweep again with --pdl, joined as extra columns
  timeout 150 $CLI bench --op correct --device cuda -n 50 --pdl --json "$OUT/bench_correct_pdl.json" >>"$OUT/sweep.txt" 2>&1
  pdl_json=(--pdl "$OUT/bench_correct_pdl.json")
fi
step vllm_triton
if [ -f .peer/seed_triton_bench.py ]; then
  PYTHONPATH=.peer timeout 200 python3 bench/vllm_join.py "${pdl_json[@]}" "$OUT/bench_correct.json" "$OUT/bench_merge.json" \
    >"$OUT/table.md" 2>>"$LOG"
  tail -60 "$OUT/table.md"
fi
step done
