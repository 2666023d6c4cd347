#!/usr/bin/env bash
# Runs every example against a cpattn build with CUDA, NCCL and MPI in ${1:-build}, on a
# machine with ${NP:-2} GPUs: first examples/run_cpu.sh (install, the C++ examples built
# with find_package, the Python ones; torch_merge.py then runs on cuda:0), then cuda_merge,
# cuda_nccl_cp on NP ranks under mpirun, and where torch is installed torch_cp.py on NP ranks
# under torchrun over NCCL. Each example exits non-zero on a mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
np=${NP:-2}
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}  # the examples need no NVLink multicast
bash examples/run_cpu.sh "$build"
for exe in cuda_merge cuda_nccl_cp; do
  if [ ! -x "$build/examples/$exe" ]; then
    echo "examples: $exe was not built: $build has no CUDA (cuda_merge) or no CUDA + NCCL + MPI (cuda_nccl_cp)" >&2
    exit 1
  fi
done
"$build/examples/cuda_merge"
as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(--allow-run-as-root)
mpirun "${as_root[@]}" -np "$np" -x NCCL_NVLS_ENABLE "$build/examples/cuda_nccl_cp"
python=$(sed -n '/^_\{0,1\}Python_EXECUTABLE:/{s/^[^=]*=//p;q;}' "$build/CMakeCache.txt")
[ -n "$python" ] || python=python3
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
if "$python" -c "import torch" 2>/dev/null; then
  "$python" -m torch.distributed.run --nproc-per-node "$np" examples/torch_cp.py
  "$python" -m torch.distributed.run --nproc-per-node "$np" examples/torch_cp.py --path collectives
fi
