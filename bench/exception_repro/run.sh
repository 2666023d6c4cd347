# Device-only crash hunt (see docs/known-issues.md): minimal nanobind modules that throw, built
# and run the way cpattn._C is. usage (repo root, on the device): bash bench/exception_repro/run.sh
cd bench/exception_repro && cmake -S . -B b -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=$(command -v python3) > /tmp/c.log 2>&1 && cmake --build b -j8 > /tmp/b.log 2>&1 || tail -20 /tmp/c.log /tmp/b.log
for mod in exc_plain exc_excl exc_dyn; do for pre in "" "import numpy"; do
  PYTHONPATH=b python3 -c "$pre
import $mod
try: print('$mod [$pre]', $mod.mine_released())
except Exception as e: print('$mod [$pre] raised', type(e).__name__, e)" 2>&1 | tail -1; echo "  rc=${PIPESTATUS[0]}"; done; done
grep -o "static-libstdc[^ ]*" b/CMakeFiles/exc_plain.dir/link.txt; cat b/CMakeFiles/exc_plain.dir/link.txt | head -2
