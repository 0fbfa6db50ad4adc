#!/usr/bin/env bash
# Rebuilds a shipped model: `bash scripts/train-shipped.sh general` (a head on the pretrained
# backbone trained on a corpus of photos, icons, logos and garments assembled from Debian
# packages; about 15 minutes on 2 cores) or `bash scripts/train-shipped.sh fashion-mnist` (a
# head trained on Fashion-MNIST's 60,000 training images; about 30 minutes). Training runs in
# runs/NAME (resumable: rerun the command); only the model's files are copied to models/NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bash scripts/train-shipped.sh general|fashion-mnist}
data=${DATA:-data}
python=.venv/bin/python
case "$name" in
  general)
    WITH_DATA=1 EXTRAS=bench bash scripts/bootstrap.sh
    [ -f "$data/photos/items.json" ] || $python -m evaluation.photos assemble --out "$data/photos"
    for set in dev-logos icon-themes; do
      [ -f "$data/$set/items.json" ] || $python -m evaluation.galleries "$set" --out "$data/$set"
    done
    # Every set's gallery minus what the evaluations query, so they measure unseen images.
    [ -f "$data/corpus/corpus.json" ] || $python -m evaluation.corpus --photos "$data/photos" \
      --icon-themes "$data/icon-themes" --dev-logos "$data/dev-logos" --out "$data/corpus"
    source="$data/corpus"
    ;;
  fashion-mnist)
    WITH_DATA=1 EXTRAS=indexer bash scripts/bootstrap.sh
    source=fashion-mnist
    ;;
  *)
    echo "error: unknown shipped model '$name'; choose general or fashion-mnist" >&2
    exit 2
    ;;
esac
resume=()
[ -f "runs/$name/resume.json" ] && resume=(--resume)
$python -m models train --data "$source" --seed 0 --out "runs/$name" "${resume[@]}"
mkdir -p "models/$name"
cp "runs/$name/config.json" "runs/$name/model.safetensors" "models/$name/"
echo "models/$name rebuilt"
