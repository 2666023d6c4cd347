#!/usr/bin/env bash
# One call on nvidia-h200-x2: build, the 2-rank NCCL tests (both transports, graph replay,
# a missing rank), the GPU pack/unpack and Python drop-in tests, the demo over NCCL and the
# cp benches with both transports next to the raw collectives. Logs land in $OUT.
#   usage: OUT=/some/dir bash bench/device_direct.sh [sanitize]
set -uo pipefail
source bench/device_env.sh
BUILD=build-device
MPI=(mpirun --allow-run-as-root --oversubscribe -x NCCL_NVLS_ENABLE -x TORCH_SYMM_MEM_DISABLE_MULTICAST -x NVSHMEM_DISABLE_NVLS)

step build
build_device $BUILD
CLI=$BUILD/tools/cpattn/cpattn

step nccl tests, 2 ranks
timeout 300 "${MPI[@]}" -np 2 $BUILD/tests/test_nccl 2>&1 | tee "$OUT/test_nccl.txt" | grep -E "^\[  (PASSED|FAILED|  OK|SKIPPED) |Failure|rank" | head -40

step gpu tests: pack/unpack, graphs
timeout 200 $BUILD/tests/test_cuda --gtest_filter='Matrix/CudaPack*:Matrix/CudaUnpack*:CudaGraph*:CudaPackBounds*' 2>&1 | tail -3

step python drop-in tests
export PYTHONPATH=$PWD/$BUILD/python
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/python/test_vllm_dropin.py tests/python/test_ops.py \
  tests/python/test_torch.py >"$OUT/python.txt" 2>&1
tail -3 "$OUT/python.txt"
if [ -d .vllm_tests ]; then  # vLLM's own test file (kept out of the repo), its import path served by cpattn
  (cd .vllm_tests && PYTHONPATH=$PWD:$PYTHONPATH timeout 200 python3 -m pytest -v -p no:cacheprovider \
    test_pack_unpack_triton.py) >>"$OUT/python.txt" 2>&1
  grep -E "PASSED|FAILED|passed|failed" "$OUT/python.txt" | tail -10
fi

step demo over NCCL, 2 ranks
for shape in "-B 64 -H 16 -D 128" "-B 1 -H 128 -D 512" "-B 64 -H 128 -D 512" "-B 256 -H 128 -D 512"; do
  timeout 120 "${MPI[@]}" -np 2 $CLI demo --device cuda --comm nccl $shape -S 2048 2>&1 | tee -a "$OUT/demo.txt" | grep -E "cp_lse|MISMATCH|match"
done

step cp benches, 2 ranks
: >"$OUT/bench_cp.txt"
for op in cp-rs cp-ar cp-a2a; do
  timeout 200 "${MPI[@]}" -np 2 $CLI bench --op $op --device cuda --comm nccl -B 1,8,64,256,2048 --path direct,collectives,auto \
    -n 50 2>&1 | tee -a "$OUT/bench_cp.txt"
done

if [ "${1:-}" = sanitize ]; then
  SAN_TOOLS="memcheck racecheck" SAN_SERIAL=1 SAN_TIMEOUT=200 bash bench/device_sanitize.sh \
    'Nccl.DirectCalls*:Nccl.Thousand*' $BUILD/tests/test_nccl "${MPI[@]}" -np 2
fi
step done
