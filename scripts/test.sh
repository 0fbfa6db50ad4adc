#!/usr/bin/env bash
# README command 2: set up (with Fashion-MNIST, which the README test's demo indexes), then
# lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_DATA=1 WITH_TEST_TOOLS=1 EXTRAS=test bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Two processes, each taking whole test modules (their fixtures are set up once): most slow
# tests wait on servers, clusters and containers they started, so two share 2 cores well.
.venv/bin/python -m pytest -n 2 --dist loadscope "$@"
