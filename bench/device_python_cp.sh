#!/usr/bin/env bash
# One call on nvidia-h200-x2 (give it the full 600 s): build, the Python cp functions over a
# torch NCCL group and vLLM-style groups under torchrun (tests: both transports, graphs,
# torch.compile; then the timing table next to vLLM's Python + Triton rs and the C++ call),
# logs in $OUT.
#   usage: OUT=/some/dir bash bench/device_python_cp.sh
set -uo pipefail
source bench/device_env.sh
BUILD=build-device
MPI=(mpirun --allow-run-as-root --oversubscribe -x NCCL_NVLS_ENABLE -x TORCH_SYMM_MEM_DISABLE_MULTICAST -x NVSHMEM_DISABLE_NVLS)
# a checkout whose tools/ are mid-edit can carry the committed ones in .cpp_tools (git archive)
[ -d .cpp_tools/tools ] && cp -r .cpp_tools/tools/. tools/
step build
# only what this call runs (the Python extension and the CLI): the full build with every test
# binary took most of a 300 s call
cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DPython_EXECUTABLE="$(command -v python3)" \
  "${cli11[@]}" >>"$LOG" 2>&1 && cmake --build $BUILD -j"$(nproc)" --target _C cpattn_cli >>"$LOG" 2>&1 ||
  { tail -60 "$LOG"; exit 1; }
export PYTHONPATH=$PWD/$BUILD/python
step python tests: torch NCCL groups under torchrun, the vLLM drop-in
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/python/test_torch_nccl.py tests/python/test_vllm_dropin.py \
  >"$OUT/python_tests.txt" 2>&1
echo "pytest rc=$?" | tee -a "$LOG"
tail -3 "$OUT/python_tests.txt"
step python cp bench, torchrun 2 GPUs
timeout 300 python3 -m torch.distributed.run --nproc-per-node 2 bench/python_cp.py \
  $([ -f .peer/seed_triton_bench.py ] && echo --vllm-triton .peer/seed_triton_bench.py) 2>&1 | tee "$OUT/python_cp.txt" | grep -v "^W\|warn"
step the C++ call in the same run
timeout 120 "${MPI[@]}" -np 2 $BUILD/tools/cpattn/cpattn bench --op cp-rs --device cuda --comm nccl -B 1,8,64,256 -H 128 \
  --path auto,collectives -n 50 2>&1 | tee "$OUT/cpp_cp.txt" | grep -E "B[0-9]+ H"
step done
