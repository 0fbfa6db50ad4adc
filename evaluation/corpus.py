"""`python -m evaluation.corpus`: the broad training folder of the shipped general model.

    python -m evaluation.corpus --photos DIR --icon-themes DIR --dev-logos DIR --out CORPUS

Real photographs (`evaluation.photos`), desktop icon themes and developer logos
(`evaluation.galleries`)
and Fashion-MNIST garments, as one folder of images that `python -m models train --data
CORPUS` reads. What the evaluations query stays out, so the general model is measured on
images it has never seen: the photos whose attacked copies are test queries, and the query
and validation styles of each drawing set. Files are hard-linked where they can be.
"""

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from PIL import Image

from evaluation.galleries import ITEMS_FILE
from models.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist

logger = logging.getLogger(__name__)

CORPUS_FILE = "corpus.json"
FASHION_MNIST_IMAGES = 3000


def write_corpus(
    out: Path, *, photos: Path, icon_themes: Path, dev_logos: Path, garments: int
) -> dict:
    """Link or copy every training image into `out`; returns the counts written to corpus.json."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    counts = {
        "photos": _photos(photos, out / "photos"),
        "icon-themes": _drawings(icon_themes, out / "icon-themes"),
        "dev-logos": _drawings(dev_logos, out / "dev-logos"),
        "fashion-mnist": _garments(out / "fashion-mnist", garments),
    }
    summary = {"images": sum(counts.values()), "counts": counts}
    (out / CORPUS_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _photos(root: Path, out: Path) -> int:
    """Gallery photos whose attacked copies are not test queries."""
    items = _items(root)
    tested = {photo for names in items["queries"].values() for photo in names}
    kept = [path for path, names in items["gallery"].items() if tested.isdisjoint(names)]
    for path in kept:
        _link(root / "gallery" / path, out / path)
    return len(kept)


def _drawings(root: Path, out: Path) -> int:
    """Gallery drawings of every style but the validation style (queries are kept apart)."""
    items = _items(root)
    held_out = items["validation_style"] + "/"
    kept = [path for path in items["gallery"] if not path.startswith(held_out)]
    for path in kept:
        _link(root / "gallery" / path, out / path)
    return len(kept)


def _garments(out: Path, count: int) -> int:
    """The first `count` Fashion-MNIST training images as PNG files in class folders."""
    images, labels = load_fashion_mnist("train")
    for index in range(min(count, len(images))):
        path = out / FASHION_MNIST_CLASSES[labels[index]] / f"train-{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(path)
    return min(count, len(images))


def _items(root: Path) -> dict:
    if not (root / ITEMS_FILE).is_file():
        raise FileNotFoundError(f"{root} is not a gallery set (no {ITEMS_FILE})")
    return json.loads((root / ITEMS_FILE).read_text())


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copyfile(source, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.corpus", description=__doc__)
    parser.add_argument("--photos", type=Path, required=True, help="a set from evaluation.photos")
    parser.add_argument("--icon-themes", type=Path, required=True, help="from evaluation.galleries")
    parser.add_argument("--dev-logos", type=Path, required=True, help="from evaluation.galleries")
    parser.add_argument("--fashion-mnist", type=int, default=FASHION_MNIST_IMAGES,
                        help="training garments to include")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = write_corpus(args.out, photos=args.photos, icon_themes=args.icon_themes,
                               dev_logos=args.dev_logos, garments=args.fashion_mnist)  # fmt: skip
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{summary['images']} images in {args.out}: {summary['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
