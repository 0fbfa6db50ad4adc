#!/usr/bin/env bash
# Trains every model behind docs/results.md with one shared recipe, then measures them all.
# About 110 minutes on a 2-core CPU (seven 8-epoch runs of ~15 minutes); runs already in $RUNS
# are kept. The first run, tricl-nested-seed0, is the shipped small CNN (models/fashion-mnist-small-cnn).
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_DATA=1 EXTRAS=bench bash scripts/bootstrap.sh
runs=${RUNS:-runs}
train() {
  [ -f "$runs/$1-seed$2/config.json" ] ||
    .venv/bin/python -m models train --data fashion-mnist --loss "$1" --seed "$2" --epochs 8 \
      --out "$runs/$1-seed$2"
}
train tricl-nested 0
train tricl 0
train simclr 0
train mrl 0
train tricl-nested 1
train tricl 1
train simclr 1
.venv/bin/python -m evaluation.compare --runs "$runs" --split test --out docs
