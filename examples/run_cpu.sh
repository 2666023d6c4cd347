#!/usr/bin/env bash
# Runs every example that needs no GPU against the cpattn build in ${1:-build} (CI runs it
# after scripts/test.sh): installs that build into <build>/examples-prefix, builds
# examples/CMakeLists.txt against it with find_package(cpattn), as a downstream project
# would, and runs cpu_merge; then numpy_merge.py and vllm_integration.py with
# PYTHONPATH=<build>/python, and where torch is installed torch_merge.py and torch_cp.py
# (2 CPU ranks over gloo). Each example exits non-zero on a mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
prefix=$PWD/$build/examples-prefix
rm -rf "$prefix" "$build/examples"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S examples -B "$build/examples" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build/examples" -j "$(nproc)" >/dev/null
"$build/examples/cpu_merge"

if [ ! -f "$build/python/cpattn/__init__.py" ]; then
  echo "examples: the Python examples skipped: $build has no Python package (nanobind missing at configure time)"
  exit 0
fi
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
python3 examples/numpy_merge.py
python3 examples/vllm_integration.py
if python3 -c "import torch" 2>/dev/null; then
  python3 examples/torch_merge.py
  OMP_NUM_THREADS=1 python3 -m torch.distributed.run --nproc-per-node 2 examples/torch_cp.py --backend gloo
else
  echo "examples: torch_merge.py and torch_cp.py skipped: no torch"
fi
