"""`python -m evaluation.duplicates`: the duplicate finder's precision and recall.

A gallery of distinct Fashion-MNIST test images (exact pixel repeats left out) in which some
images were planted again in five altered copies each (re-encoded as JPEG, scaled up, cropped a
little, brighter, mirrored); with `--photos`, the same from a photo set's attacked copies.
Precision and recall are counted over pairs: a pair is found when both items land in one group,
and true when both come from one original.

The default threshold is chosen on second planted galleries, made the same way from the distinct
images that follow: the threshold whose lower of precision and recall is highest on every one of
them. The first galleries are then measured at every threshold, beside pHash's best.
`python -m bench.duplicates` measures the finder's speed.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from models.datasets import load_fashion_mnist
from models.imagefiles import open_image

# FAISS and torch are imported by the functions that use them: --help answers at once.
if TYPE_CHECKING:
    from indexer.duplicates import DuplicateGroups

THRESHOLDS = (0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98)
VALIDATION_THRESHOLDS = (0.94, 0.945, 0.95, 0.955, 0.96, 0.965, 0.97, 0.975, 0.98)


def altered_copies(image: Image.Image) -> dict[str, bytes]:
    """Five near-duplicates of one image, as the files a user would have: name -> bytes."""
    width, height = image.size
    copies = {
        "jpeg.jpg": image.convert("RGB") if image.mode not in ("L", "RGB") else image,
        "scaled.png": image.resize((width * 2, height * 2), Image.Resampling.BICUBIC),
        "cropped.png": image.crop((1, 1, width - 1, height - 2)),
        "brighter.png": ImageEnhance.Brightness(image).enhance(1.2),
        "mirrored.png": ImageOps.mirror(image),
    }
    written = {}
    for name, copy in copies.items():
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG" if name.endswith(".jpg") else "PNG", quality=75)
        written[name] = buffer.getvalue()
    return written


def write_planted_gallery(
    out: Path, distinct: int, planted: int, source: Path | None = None, *, skip: int = 0
) -> dict[str, int]:
    """`distinct` images with no exact repeat among them (Fashion-MNIST test images, or the
    images of the `source` folder), after the first `skip` of them; the first `planted` also
    as five altered copies. Returns each file's original (its group)."""
    origin = {}
    (out / "originals").mkdir(parents=True, exist_ok=True)
    (out / "planted").mkdir(parents=True, exist_ok=True)
    images = itertools.islice(_distinct_images(source), skip, skip + distinct)
    for number, image in enumerate(images):
        name = f"originals/{number:05d}.png"
        image.save(out / name)
        origin[name] = number
        if number < planted:
            for kind, data in altered_copies(image).items():
                name = f"planted/{number:05d}-{kind}"
                (out / name).write_bytes(data)
                origin[name] = number
    return origin


def _distinct_images(source: Path | None) -> Iterator[Image.Image]:
    """Images in a fixed order, each pixel-for-pixel different from the ones before."""
    if source is None:
        images = (Image.fromarray(np.asarray(pixels)) for pixels in load_fashion_mnist("test")[0])
    else:
        files = sorted(path for path in source.rglob("*") if path.is_file())
        images = (open_image(path) for path in files)
    seen = set()
    for image in images:
        key = image.tobytes()
        if key not in seen:
            seen.add(key)
            yield image


def pair_scores(groups: DuplicateGroups, ids: list[str], origin: dict[str, int | str]) -> dict:
    """Pairwise precision and recall of the groups against the planted ones."""
    found = {
        frozenset((ids[a], ids[b]))
        for group in groups.groups
        for (a, _), (b, _) in itertools.combinations(group, 2)
    }
    return {
        "threshold": groups.threshold,
        "groups": len(groups.groups),
        **_pair_precision_recall(found, origin),
    }


def _true_pairs(origin: dict[str, int | str]) -> set[frozenset[str]]:
    by_origin: dict[int | str, list[str]] = {}
    for name, group in origin.items():
        by_origin.setdefault(group, []).append(name)
    return {
        frozenset(pair) for names in by_origin.values() for pair in itertools.combinations(names, 2)
    }


def _pair_precision_recall(found: set[frozenset[str]], origin: dict[str, int | str]) -> dict:
    """Precision, recall and F1 over pairs of files, and the recall of each alteration (each
    planted copy paired with its original)."""
    true = _true_pairs(origin)
    hits = len(found & true)
    original = {group: name for name, group in origin.items() if name.startswith("originals/")}
    by_kind: dict[str, list[bool]] = {}
    for name, group in origin.items():
        if name.startswith("planted/"):
            # planted/00012-jpeg.jpg (Fashion-MNIST) or planted/<package>/<stem>/jpeg.jpg
            kind = Path(name).stem.rsplit("-", 1)[-1]
            by_kind.setdefault(kind, []).append(frozenset((name, original[group])) in found)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "pairs_found": len(found),
        "true_pairs": len(true),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "recall_by_alteration": {
            kind: round(sum(hits) / len(hits), 4) for kind, hits in sorted(by_kind.items())
        },
    }


def phash_pair_scores(folder: Path, origin: dict[str, int | str]) -> dict:
    """The perceptual-hash baseline: every pair within Hamming distance d of 64 bits, for the
    d with the best pair F1 (chosen on the gallery itself: pHash's best case)."""
    from evaluation.quality import phash_codes

    names = sorted(origin)
    codes = phash_codes([folder / name for name in names])
    distances = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
    upper = np.triu_indices(len(names), k=1)
    rows = []
    for distance in range(0, 33):
        close = distances[upper] <= distance
        found = {
            frozenset((names[a], names[b]))
            for a, b in zip(upper[0][close], upper[1][close], strict=True)
        }
        rows.append({"hamming": distance, **_pair_precision_recall(found, origin)})
    return max(rows, key=lambda row: row["f1"])


def measure_planted(
    gallery: Path,
    origin: dict[str, int | str],
    work: Path,
    model: Path | None,
    *,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[dict]:
    """Pair precision and recall at each threshold on a planted gallery, indexed with `model`
    (default: the model `indexer build` uses when none is named), every dimension kept."""
    from indexer.build import BuildConfig, build_index
    from indexer.duplicates import find_duplicates
    from models.checkpoint import DEFAULT_CHECKPOINT
    from search.core import SearchIndex

    index_dir = work / f"{gallery.name}-index"
    build_index(BuildConfig(gallery=gallery, model=model or DEFAULT_CHECKPOINT, out=index_dir))
    index = SearchIndex.open(index_dir)
    vectors = np.asarray(index.vectors)
    rows = []
    for threshold in thresholds:
        found = find_duplicates(vectors, threshold)
        rows.append(pair_scores(found, index.ids, origin))
        print(f"  {gallery.name}, threshold {threshold}: {rows[-1]}", flush=True)
    return rows


def balanced_threshold(*galleries: list[dict]) -> float:
    """The threshold whose lowest precision or recall over the galleries is highest: both
    are goals, on every kind of gallery."""
    by_threshold: dict[float, float] = {}
    for rows in galleries:
        for row in rows:
            worst = min(row["precision"], row["recall"])
            by_threshold[row["threshold"]] = min(by_threshold.get(row["threshold"], 1.0), worst)
    return max(by_threshold, key=lambda threshold: (by_threshold[threshold], -threshold))


def planted_galleries(work: Path, args: argparse.Namespace) -> dict[str, dict]:
    """name -> {"gallery", "origin", "role"}: Fashion-MNIST's two planted galleries (the
    distinct test images after the first `--distinct` for validation, the first ones for
    evaluation) and, with `--photos`, the two halves of a photo set."""
    galleries = {}
    for role, skip in (("validation", args.distinct), ("evaluation", 0)):
        folder = work / f"fashion-mnist-{role}"
        origin = write_planted_gallery(folder, args.distinct, args.planted, args.source, skip=skip)
        galleries[folder.name] = {"gallery": folder, "origin": origin, "role": role}
    if args.photos is not None:
        from evaluation.photos import write_planted_gallery as write_planted_photos

        for role, half in (("validation", "val"), ("evaluation", "test")):
            folder = work / f"photos-{role}"
            origin = write_planted_photos(args.photos, folder, half=half)
            galleries[folder.name] = {"gallery": folder, "origin": origin, "role": role}
    return galleries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.duplicates", description=__doc__)
    parser.add_argument("--distinct", type=int, default=5000, help="distinct test images")
    parser.add_argument("--planted", type=int, default=500, help="of them, planted 5 more times")
    parser.add_argument(
        "--source", type=Path, default=None,
        help="folder of distinct images (default: Fashion-MNIST test)",
    )  # fmt: skip
    parser.add_argument(
        "--photos", type=Path, help="a photo set (evaluation.photos): also planted photo galleries"
    )
    parser.add_argument("--model", type=Path, help="model to index with (default: shipped)")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    results: dict = {
        "command": " ".join(["python -m evaluation.duplicates", *(argv or sys.argv[1:])])
    }
    results["model"] = str(args.model or "default")
    results["galleries"] = {}
    with tempfile.TemporaryDirectory(prefix="evaluation-duplicates-") as work:
        for name, planted in planted_galleries(Path(work), args).items():
            thresholds = VALIDATION_THRESHOLDS if planted["role"] == "validation" else THRESHOLDS
            results["galleries"][name] = {
                "role": planted["role"],
                "items": len(planted["origin"]),
                "thresholds": measure_planted(
                    planted["gallery"], planted["origin"], Path(work), args.model,
                    thresholds=thresholds,
                ),
                "phash_best": phash_pair_scores(planted["gallery"], planted["origin"]),
            }  # fmt: skip
    validation = [g["thresholds"] for g in results["galleries"].values()
                  if g["role"] == "validation"]  # fmt: skip
    results["balanced_threshold"] = balanced_threshold(*validation)
    print(f"balanced on the validation galleries: {results['balanced_threshold']}")
    for name, measured in results["galleries"].items():
        if measured["role"] == "evaluation":
            best = max(measured["thresholds"], key=lambda row: row["f1"])
            print(f"{name}: best F1 {best['f1']} at {best['threshold']}; "
                  f"pHash best F1 {measured['phash_best']['f1']}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "duplicates.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
