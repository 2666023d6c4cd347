#!/usr/bin/env bash
# One device call that compares two versions of the kernels on the full single-GPU sweep: the
# working tree ("after") and a git ref ("before", built from `git archive`), each sweep run by
# both CLIs back to back, then one table joined by bench/ab_join.py (time before, after, the
# ratio, % of copy). Also runs the GPU tests of the working tree.
#   usage: OUT=/some/dir [SKIP="test"] bash bench/device_ab.sh BEFORE [ops...]
#   BEFORE a git ref, or a tar file of the tree (`git archive REF > .peer/before.tar`, for a
#          commit the device's copy of the repository does not have yet)
#   ops    default: correct merge pack unpack (merge-varlen runs after, on the working tree only)
set -uo pipefail
source bench/device_env.sh
BEFORE=${1:?usage: bench/device_ab.sh BEFORE [ops...]}
shift
OPS=("${@:-}")
[ -z "${OPS[*]}" ] && OPS=(correct merge pack unpack)
skip() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
configure() {  # source dir, build dir
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCPATTN_PYTHON=OFF -DCPATTN_MPI=OFF \
    "${cli11[@]}" >>"$LOG" 2>&1
}
step build "after: working tree; before: $BEFORE"
rm -rf /tmp/cpattn-before && mkdir -p /tmp/cpattn-before
if [ -f "$BEFORE" ]; then
  tar -xf "$BEFORE" -C /tmp/cpattn-before || { echo "cannot read the tar file $BEFORE"; exit 1; }
else
  git archive "$BEFORE" | tar -x -C /tmp/cpattn-before || { echo "cannot read $BEFORE from git"; exit 1; }
fi
[ -d .deps ] && cp -r .deps /tmp/cpattn-before/
(configure /tmp/cpattn-before build-before && cmake --build build-before -j8 --target cpattn_cli >>"$LOG" 2>&1) &
configure . build-after && cmake --build build-after -j12 --target cpattn_cli test_cuda >>"$LOG" 2>&1 || { tail -60 "$LOG"; exit 1; }
wait
[ -x build-before/tools/cpattn/cpattn ] || { tail -60 "$LOG"; echo "the before build failed"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
if ! skip test; then
  step test_cuda
  timeout 300 build-after/tests/test_cuda >"$OUT/test_cuda.txt" 2>&1
  echo "test_cuda rc=$?" | tee -a "$LOG"
  grep -E "^\[  (PASSED|FAILED|SKIPPED)|FAILED  \]" "$OUT/test_cuda.txt" | head -20 | tee -a "$LOG"
fi
step sweep
for op in "${OPS[@]}"; do
  for side in before after; do  # back to back, so both see the same machine state
    timeout 200 build-$side/tools/cpattn/cpattn bench --op "$op" --device cuda -n 50 --json "$OUT/ab_${op}_$side.json" \
      >>"$OUT/ab_sweeps.txt" 2>&1 || echo "$side $op: rc $?" | tee -a "$LOG"
  done
done
timeout 100 build-after/tools/cpattn/cpattn bench --op merge-varlen --device cuda -n 50 --json "$OUT/merge_varlen.json" \
  >>"$OUT/ab_sweeps.txt" 2>&1
step join
python3 bench/ab_join.py "$OUT" "${OPS[@]}" | tee "$OUT/ab_table.md"
step done
