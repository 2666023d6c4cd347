# Sourced by the bench/device_*.sh and multigpu.sh scripts: the output folder, the
# environment every device call keeps (NVLink multicast off on shared hosts), a logged step
# marker and the CLI11 include from .deps when the device image lacks it.
OUT=${OUT:-/tmp/cpattn-device}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
LOG=${LOG:-$OUT/log.txt}
step() { echo; echo "=== $* ($(date +%T))" | tee -a "$LOG"; }
cli11=()
[ -d .deps/include/CLI ] && cli11=(-DCPATTN_CLI11_INCLUDE_DIR="$PWD/.deps/include")
# build_device DIR [cmake args]: a Release sm_90 build of everything into DIR (output in $LOG,
# its tail shown and the script ended on failure), then the configuration and the GPUs.
build_device() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 "${cli11[@]}" "$@" >>"$LOG" 2>&1 &&
    cmake --build "$dir" -j"$(nproc)" >>"$LOG" 2>&1 || { tail -60 "$LOG"; exit 1; }
  grep "cpattn 0" "$LOG" | tail -1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
}
