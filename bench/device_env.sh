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
