#!/usr/bin/env bash
# The multi-GPU run (issue 8), one device call per kind (nvidia-h200-x2/-x4/-x8): the demo
# and the cp benches over NCCL on K GPUs, written under $OUT.
#   usage: OUT=/dir bash bench/multigpu.sh            (K = every visible GPU, and 2 and 4 below it)
set -uo pipefail
OUT=${OUT:-/tmp/cpattn-multigpu}
source bench/device_env.sh
BUILD=build-multigpu
cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCPATTN_BUILD_TESTS=OFF "${cli11[@]}" \
  >"$OUT/build.txt" 2>&1 && cmake --build $BUILD -j16 >>"$OUT/build.txt" 2>&1 || { tail -40 "$OUT/build.txt"; exit 1; }
CLI=$BUILD/tools/cpattn/cpattn
GPUS=$(nvidia-smi -L | wc -l)
MPI=(mpirun --allow-run-as-root --oversubscribe -x NCCL_NVLS_ENABLE -x TORCH_SYMM_MEM_DISABLE_MULTICAST -x NVSHMEM_DISABLE_NVLS)
run_k() {  # the demo and the three cp benches on $1 ranks; non-zero if any of them failed
  local K=$1 st=0
  echo "=== K=$K demo: GQA H16 D128, then DeepSeek-V3 MLA H128 D512 at B 1, 64, 256"
  "${MPI[@]}" -np $K $CLI demo --device cuda --comm nccl -B 64 -H 16 -D 128 -S 2048 || st=1
  for B in 1 64 256; do
    "${MPI[@]}" -np $K $CLI demo --device cuda --comm nccl -B $B -H 128 -D 512 -S 2048 || st=1
  done
  for op in cp-rs cp-ar cp-a2a; do
    "${MPI[@]}" -np $K $CLI bench --op $op --device cuda --comm nccl -B 1,8,64,256,2048 -n 50 || st=1
  done
  return $st
}
status=0
for K in 2 4 8; do
  [ "$K" -le "$GPUS" ] || continue
  run_k $K 2>&1 | tee "$OUT/multigpu_K$K.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "multigpu: $([ $status -eq 0 ] && echo OK || echo FAILED) on $GPUS GPUs"
exit $status
