#!/usr/bin/env bash
# One device call for the Python package: build cpattn._C (Release, sm_90) into the build
# tree, run the whole pytest suite with CUDA torch and cupy present (CUDA tests, opcheck,
# torch.compile, graph capture, gloo, mpi4py, cupy), then bench/python_vs_vllm.py (equal
# results, kernel time and host time per call next to vLLM's Triton functions).
#   usage: OUT=/some/dir bash bench/device_python.sh
set -uo pipefail
LOG=${OUT:-/tmp/cpattn-device}/python_log.txt
source bench/device_env.sh
step build
cmake -S . -B build-py -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCPATTN_PYTHON=ON \
  -DPython_EXECUTABLE="$(command -v python3)" -DCPATTN_BUILD_TOOLS=OFF "${cli11[@]}" >>"$LOG" 2>&1 &&
  cmake --build build-py -j16 --target _C >>"$LOG" 2>&1 || { tail -40 "$LOG"; exit 1; }
step pytest
PYTHONPATH=build-py/python timeout 400 python3 -X faulthandler -m pytest -v -rs tests/python >"$OUT/pytest.txt" 2>&1
echo "pytest rc=$?" | tee -a "$LOG"
grep -E "Fatal Python error|tests/python/.*line [0-9]+ in|^(FAILED|ERROR|SKIPPED)|passed|failed" "$OUT/pytest.txt" | tail -30 | tee -a "$LOG"
step python_vs_vllm
if [ -f .peer/seed_triton_bench.py ]; then
  OUT="$OUT" PYTHONPATH=build-py/python:.peer timeout 240 python3 bench/python_vs_vllm.py 2>&1 | tail -20 | tee -a "$LOG"
fi
step done
