#!/usr/bin/env bash
# Runs every example that needs no GPU against the cpattn build in ${1:-build} (CI runs it
# after scripts/test.sh): installs that build into <build>/examples-prefix, builds
# examples/CMakeLists.txt against it with find_package(cpattn), as a downstream project
# would, and runs cpu_merge; then numpy_merge.py and vllm_integration.py with
# PYTHONPATH=<build>/python and the Python the build used, and where torch is installed
# torch_merge.py and torch_cp.py (2 CPU ranks over gloo). Each example exits non-zero on a
# mismatch.
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
# the Python the extension was built for (scripts/build.sh: the project's .venv, which has numpy)
python=$(sed -n '/^_\{0,1\}Python_EXECUTABLE:/{s/^[^=]*=//p;q;}' "$build/CMakeCache.txt")
[ -n "$python" ] || python=python3
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
"$python" examples/numpy_merge.py
"$python" examples/vllm_integration.py
if "$python" -c "import torch" 2>/dev/null; then
  "$python" examples/torch_merge.py
  OMP_NUM_THREADS=1 "$python" -m torch.distributed.run --nproc-per-node 2 examples/torch_cp.py --backend gloo
else
  echo "examples: torch_merge.py and torch_cp.py skipped: no torch"
fi
