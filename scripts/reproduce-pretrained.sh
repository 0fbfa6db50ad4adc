#!/usr/bin/env bash
# The pretrained backbone's results in docs/results.md: assembles the evaluation sets (real
# photographs, developer logos, desktop icon themes), trains a head on each gallery with each
# loss, and measures them and the shipped general model beside raw pixels, the frozen backbone
# and pHash on the held-out queries. Steps already done in $DATA and $RUNS are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_DATA=1 EXTRAS=bench bash scripts/bootstrap.sh
data=${DATA:-data}
runs=${RUNS:-runs}
python=.venv/bin/python
[ -f "$data/photos/items.json" ] || $python -m evaluation.photos assemble --out "$data/photos"
for set in dev-logos icon-themes; do
  [ -f "$data/$set/items.json" ] || $python -m evaluation.galleries "$set" --out "$data/$set"
done

# The shipped general model (models/general) is rebuilt by scripts/train-shipped.sh general.

# Heads trained on each gallery, as a user would: the plain command, then SimCLR and MRL.
for set in photos dev-logos icon-themes; do
  for loss in tricl-nested simclr mrl; do
    [ -f "$runs/$set-$loss/config.json" ] ||
      $python -m models train --data "$data/$set/gallery" --loss "$loss" --out "$runs/$set-$loss"
  done
  for split in val test; do
    $python -m evaluation.quality --set "$data/$set" --split "$split" --model models/general \
      --model "$runs/$set-tricl-nested" --model "$runs/$set-simclr" --model "$runs/$set-mrl" \
      --json "docs/quality-$set-$split.json"
  done
done
