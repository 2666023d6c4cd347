#!/usr/bin/env bash
# Installs what building and testing cpattn needs, once: a compiler, CMake, GoogleTest, CLI11
# and Open MPI from Debian/Ubuntu packages (apt), and nanobind, numpy, pytest and mpi4py into
# the project's Python virtual environment .venv in the repository root (never into the system
# Python: Debian's is externally managed, PEP 668). nvcc and NCCL are optional (found if
# present). Says what it does; apt's and pip's output is shown only when they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "cpattn: $*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs "$@" with its output kept aside; on failure shows that output and returns the status.
quietly() {
  local status=0
  "$@" >"$log" 2>&1 || status=$?
  [ $status -eq 0 ] || cat "$log" >&2
  return $status
}
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
apt_install() {
  say "installing apt packages (a few minutes): $* ..."
  export DEBIAN_FRONTEND=noninteractive
  quietly $sudo apt-get update || { say "apt-get update failed (its output is above)"; exit 1; }
  quietly $sudo apt-get install -y "$@" || { say "apt-get install $* failed (its output is above)"; exit 1; }
}

packages=(cmake g++ make libgtest-dev libgmock-dev libcli11-dev libopenmpi-dev openmpi-bin)
# The Python that .venv is made from: the first python3 on PATH (a pyenv or conda one as it is);
# Debian's own needs its venv module and headers from apt.
python=$(command -v python3 || true)
[ -n "$python" ] || packages+=(python3)
is_system_python() { [ "$("$python" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" = /usr ]; }
if [ -z "$python" ] || is_system_python; then
  packages+=(python3-venv python3-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
python=$(command -v python3)

# the Python package and its tests: nanobind to build it, numpy, pytest and mpi4py (over the
# system Open MPI) to test it; the venv sees the base Python's packages (torch, cupy) too
venv=.venv
pydeps=(nanobind numpy pytest mpi4py)
if ! "$venv/bin/python" -c "import nanobind, numpy, pytest, mpi4py" >/dev/null 2>&1; then
  if ! "$venv/bin/python" -c "" >/dev/null 2>&1; then  # none yet, or one whose Python is gone
    rm -rf "$venv"
    say "creating the Python virtual environment $venv (from $("$python" -c 'import sys; print(sys.executable)'), $("$python" --version 2>&1)) ..."
    if ! quietly "$python" -m venv --system-site-packages "$venv"; then
      rm -rf "$venv"
      is_system_python || { say "$python -m venv failed (its output is above)"; exit 1; }
      # Debian ships the venv module of each Python version in a package of its own
      version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt_install python3-venv "python$version-venv"
      quietly "$python" -m venv --system-site-packages "$venv" || { say "$python -m venv failed (its output is above)"; exit 1; }
    fi
  fi
  say "installing Python packages into $venv: ${pydeps[*]} ..."
  if ! quietly "$venv/bin/python" -m pip install --disable-pip-version-check -q "${pydeps[@]}"; then
    say "WARNING: pip install into $venv failed (its output is above): the Python package and its tests will not be built"
  fi
fi
