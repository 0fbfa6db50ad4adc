#!/usr/bin/env bash
# README command 1: set up, write the demo gallery, index it with the shipped model, serve it.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_DATA=1 bash scripts/bootstrap.sh
[ -d imgs ] || .venv/bin/python -m indexer demo-gallery --out imgs
[ -f index/manifest.json ] || .venv/bin/python -m indexer build --gallery imgs --out index
exec .venv/bin/python -m service --index index --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
