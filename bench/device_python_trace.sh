#!/usr/bin/env bash
# When cpattn._C crashes on the device instead of raising: a native backtrace (cuda-gdb
# debugs host-only programs too) of a call that must raise, and what the module links and
# exports (how the 2026-11-25 libstdc++ interposition crash was found). Needs build-py/ from
# bench/device_python.sh or builds it.  usage: OUT=/dir bash bench/device_python_trace.sh
set -uo pipefail
source bench/device_env.sh
T=$OUT/crash_trace.txt
if ! ls build-py/python/cpattn/_C*.so >/dev/null 2>&1; then
  cmake -S . -B build-py -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCPATTN_PYTHON=ON \
    -DPython_EXECUTABLE="$(command -v python3)" -DCPATTN_BUILD_TOOLS=OFF -DCPATTN_BUILD_TESTS=OFF "${cli11[@]}" >"$OUT/trace_build.txt" 2>&1 &&
    cmake --build build-py -j16 --target _C >>"$OUT/trace_build.txt" 2>&1 || { tail -30 "$OUT/trace_build.txt"; exit 1; }
fi
SO=$(ls build-py/python/cpattn/_C*.so)
PROG='import numpy as np, cpattn
try: cpattn.merge_attn_states(np.zeros((2, 3, 4), np.float32), np.zeros((2, 3), np.float32))
except ValueError as e: print("raised ValueError:", e)'
{
  echo "## python: $(command -v python3) $(python3 -V 2>&1); g++: $(g++ --version | head -1); c++ in cache: $(grep CMAKE_CXX_COMPILER: build-py/CMakeCache.txt)"
  echo "## ldd $SO"; ldd "$SO"
  echo "## unwinder / libstdc++ symbols defined in the module"; nm -D --defined-only "$SO" | grep -E "_Unwind|__cxa|__gxx|_ZSt|_ZNSt" | head -20
  echo "## undefined __cxa/_Unwind"; nm -D --undefined-only "$SO" | grep -E "_Unwind|__cxa_throw|__gxx_personality" | head
  echo "## libstdc++/libgcc_s in python"; PYTHONPATH=build-py/python python3 -c "import numpy, cpattn; print(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'libstdc' in l or 'libgcc' in l}))"
  echo "## plain run"; PYTHONPATH=build-py/python python3 -X faulthandler -c "$PROG" 2>&1 | tail -15; echo "rc=${PIPESTATUS[0]}"
  echo "## with LD_PRELOAD of the system libgcc_s+libstdc++"
  PYTHONPATH=build-py/python LD_PRELOAD="$(g++ -print-file-name=libgcc_s.so.1):$(g++ -print-file-name=libstdc++.so.6)" python3 -c "$PROG" 2>&1 | tail -3; echo "rc=${PIPESTATUS[0]}"
  echo "## cuda-gdb backtrace"
  PYTHONPATH=build-py/python timeout 120 cuda-gdb -q -batch -ex "set pagination off" -ex run -ex bt -ex "info registers rip" \
    -ex "x/6i \$pc" -ex "info sharedlibrary" --args python3 -c "$PROG" 2>&1 | grep -v "^\[New Thread\|^\[Thread" | head -120
} >"$T" 2>&1
tail -60 "$T"
