#!/usr/bin/env bash
# Installs what building and testing cpattn needs from Debian/Ubuntu packages, once: a
# compiler, CMake, GoogleTest, CLI11 and OpenMPI. nvcc and NCCL are optional (found if present).
set -euo pipefail
packages=(cmake g++ make libgtest-dev libgmock-dev libcli11-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "cpattn: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
