#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: Python (Debian packages, only when
# missing), a virtual environment in .venv, and the project with the extras in EXTRAS.
# EXTRAS (default test): the extras of pyproject.toml to install, e.g. indexer for the demo
# (the service and the index build), bench for the benchmarks, test for everything the test
# suite runs. pip is skipped when the same EXTRAS were installed from the same pyproject.toml.
# WITH_DATA=1 also installs Fashion-MNIST (Debian's dataset-fashion-mnist) for the demo.
# WITH_TEST_TOOLS=1 also installs chromium (browser tests, driven by Playwright), wrk (HTTP
# load generator of the benchmark and its test) and podman (the container deployment's test,
# set up by scripts/container-engine).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${EXTRAS-test}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
packages=()
command -v python3 >/dev/null || packages+=(python3)
if [ "${WITH_TEST_TOOLS:-0}" = 1 ]; then
  [ -x /usr/bin/chromium ] || packages+=(chromium)
  command -v wrk >/dev/null || packages+=(wrk)
fi
python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv python3-pip)
if [ "${WITH_DATA:-0}" = 1 ] && [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  packages+=(dataset-fashion-mnist)
fi
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing Debian packages: ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if [ "${WITH_TEST_TOOLS:-0}" = 1 ]; then
  $sudo bash scripts/container-engine
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# The stamp records what was installed: the extras and the pyproject.toml they came from. The
# project is installed editable, so changes to its code need no new install.
stamp=".venv/installed-${extras:-base}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing the project into .venv${extras:+ with [$extras]}"
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  echo "$wanted" >"$stamp"
fi
