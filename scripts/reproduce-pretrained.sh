#!/usr/bin/env bash
# The pretrained backbone's results in docs/results.md: assembles the evaluation sets (real
# photographs, developer logos, desktop icon themes), trains the shipped general model on
# them, trains per-gallery heads with each loss the same way, and measures every model beside
# raw pixels, the frozen backbone and pHash on the held-out queries. Steps already done in
# $DATA and $RUNS are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_DATA=1 EXTRAS=bench bash scripts/bootstrap.sh
data=${DATA:-data}
runs=${RUNS:-runs}
python=.venv/bin/python
[ -f "$data/photos/items.json" ] || $python -m bench.photos assemble --out "$data/photos"
for set in dev-logos icon-themes; do
  [ -f "$data/$set/items.json" ] || $python -m bench.galleries "$set" --out "$data/$set"
done

# The general model (models/general): every set's gallery minus what the evaluations query.
[ -f "$data/corpus/corpus.json" ] || $python -m bench.corpus --photos "$data/photos" \
  --icon-themes "$data/icon-themes" --dev-logos "$data/dev-logos" --out "$data/corpus"
[ -f "$runs/general/config.json" ] ||
  $python -m models train --data "$data/corpus" --out "$runs/general"

# Heads trained on each gallery, as a user would: the plain command, then SimCLR and MRL.
for set in photos dev-logos icon-themes; do
  for loss in tricl-nested simclr mrl; do
    [ -f "$runs/$set-$loss/config.json" ] ||
      $python -m models train --data "$data/$set/gallery" --loss "$loss" --out "$runs/$set-$loss"
  done
  for split in val test; do
    $python -m bench.quality --set "$data/$set" --split "$split" --model "$runs/general" \
      --model "$runs/$set-tricl-nested" --model "$runs/$set-simclr" --model "$runs/$set-mrl" \
      --json "docs/quality-$set-$split.json"
  done
done
