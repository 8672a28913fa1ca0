#!/usr/bin/env bash
# Set up realrl from scratch: Debian packages for offscreen rendering, a venv, CPU torch, realrl[dev].
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

# Offscreen MuJoCo rendering needs Mesa's EGL (and OSMesa as a fallback); USB cameras need libusb.
DEB_PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 libusb-1.0-0)
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch; GPU users install their own CUDA build first (pyproject accepts a range).
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[dev]"
echo "setup: done (activate with: . .venv/bin/activate)"
