#!/usr/bin/env bash
# Installs what building and testing cpattn needs from Debian/Ubuntu packages, once: a
# compiler, CMake, GoogleTest, CLI11 and OpenMPI (apt), nanobind, numpy, pytest and mpi4py (pip). nvcc and NCCL are optional (found if present).
set -euo pipefail
packages=(cmake g++ make libgtest-dev libgmock-dev libcli11-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "cpattn: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# the Python package and its tests: nanobind to build it, numpy, pytest and mpi4py (a binary
# wheel over the system Open MPI) to test it
if command -v python3 >/dev/null && ! python3 -c "import nanobind, numpy, pytest, mpi4py" 2>/dev/null; then
  echo "cpattn: pip installing nanobind numpy pytest mpi4py"
  python3 -m pip install -q nanobind numpy pytest mpi4py || echo "cpattn: pip failed; the Python package will not be built"
fi
