"""`python -m bench.duplicates`: the duplicate finder's precision, recall and speed.

Quality: a gallery of distinct Fashion-MNIST test images (exact pixel repeats left out) in
which some images were planted again in five altered copies each (re-encoded as JPEG, scaled
up, cropped a little, brighter, mirrored). Precision and recall are counted over pairs: a
pair is found when both items land in one group, and true when both come from one original.

The default threshold is chosen on a second planted gallery, made the same way from the
distinct images that follow (the next Fashion-MNIST test images): the threshold whose lower of
precision and recall is highest there. The first gallery is then measured at every threshold.

Speed: the funnel (candidates at a short prefix, confirmed at the full budget) against every
pair compared at the full budget, on the same index of Fashion-MNIST training images, in
alternating rounds; and how many of the exact pairs the funnel finds.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bench.build import bench_build, gallery_or_demo
from bench.machine import describe_run
from bench.report import markdown_table
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
    from bench.quality import phash_codes

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


def bench_quality(
    gallery: Path,
    origin: dict[str, int | str],
    work: Path,
    model: Path | None,
    *,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[dict]:
    """Pair precision and recall at each threshold on a planted gallery, indexed with `model`
    (default: the model `indexer build` uses when none is named)."""
    from indexer.duplicates import find_duplicates
    from indexer.index_dir import load_index

    index_dir = work / f"{gallery.name}-index"
    bench_build(gallery, index_dir, keep=_keep(model), workers=2, model=model)
    index = load_index(index_dir)
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


def bench_speed(work: Path, count: int, rounds: int) -> dict:
    from indexer.duplicates import (
        DEFAULT_FEATURES,
        DEFAULT_THRESHOLD,
        all_pairs_duplicates,
        find_duplicates,
    )
    from indexer.index_dir import load_index

    gallery = gallery_or_demo(None, work, count)
    index_dir = work / "index"
    bench_build(gallery, index_dir, keep=_keep(), workers=2)
    vectors = np.asarray(load_index(index_dir).vectors)
    timings: dict[str, list[float]] = {"funnel": [], "all pairs": []}
    for round_number in range(rounds):
        order = ("funnel", "all pairs") if round_number % 2 == 0 else ("all pairs", "funnel")
        for name in order:
            started = time.perf_counter()
            if name == "funnel":
                funnel = find_duplicates(vectors, DEFAULT_THRESHOLD)
            else:
                exact = all_pairs_duplicates(vectors, DEFAULT_THRESHOLD)
            timings[name].append(time.perf_counter() - started)
        print(f"  round {round_number + 1}: { {k: round(v[-1], 2) for k, v in timings.items()} }")
    funnel_pairs = _pairs(funnel)
    exact_pairs = _pairs(exact)
    funnel_s = statistics.median(timings["funnel"])
    exact_s = statistics.median(timings["all pairs"])
    return {
        "items": len(vectors),
        "keep": vectors.shape[1],
        "threshold": DEFAULT_THRESHOLD,
        "k_features": DEFAULT_FEATURES,
        "candidate_threshold": round(funnel.candidate_threshold, 4),
        "cells_probed": funnel.cells_probed,
        "candidate_pairs": funnel.candidate_pairs,
        "exact_pairs": len(exact_pairs),
        "funnel_pairs": len(funnel_pairs),
        "exact_pairs_found": round(len(funnel_pairs & exact_pairs) / max(1, len(exact_pairs)), 4),
        "funnel_seconds": [round(value, 3) for value in timings["funnel"]],
        "all_pairs_seconds": [round(value, 3) for value in timings["all pairs"]],
        "speedup": round(exact_s / funnel_s, 2),
    }


def _keep(model: Path | None = None) -> int:
    """Every dimension of the model: the budget a user's full search runs at."""
    from models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    return load_checkpoint(model or DEFAULT_CHECKPOINT)[0].config.embedding_dim


def _pairs(groups: DuplicateGroups) -> set[tuple[int, int]]:
    return {
        (a, b) for group in groups.groups for (a, _), (b, _) in itertools.combinations(group, 2)
    }


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
        from bench.photos import write_planted_gallery as write_planted_photos

        for role, half in (("validation", "val"), ("evaluation", "test")):
            folder = work / f"photos-{role}"
            origin = write_planted_photos(args.photos, folder, half=half)
            galleries[folder.name] = {"gallery": folder, "origin": origin, "role": role}
    return galleries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.duplicates", description=__doc__)
    parser.add_argument("--distinct", type=int, default=5000, help="distinct test images")
    parser.add_argument("--planted", type=int, default=500, help="of them, planted 5 more times")
    parser.add_argument(
        "--source", type=Path, help="folder of distinct images (default: Fashion-MNIST test)"
    )
    parser.add_argument(
        "--photos", type=Path, help="a bench.photos set: also planted galleries of photographs"
    )
    parser.add_argument("--model", type=Path, help="model to index with (default: shipped)")
    parser.add_argument("--count", type=int, default=60_000, help="training images for speed")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    results = describe_run("python -m bench.duplicates", argv)
    results["galleries"] = {}
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as work:
        galleries = planted_galleries(Path(work), args)
        for name, planted in galleries.items():
            thresholds = VALIDATION_THRESHOLDS if planted["role"] == "validation" else THRESHOLDS
            results["galleries"][name] = {
                "role": planted["role"],
                "items": len(planted["origin"]),
                "thresholds": bench_quality(
                    planted["gallery"],
                    planted["origin"],
                    Path(work),
                    args.model,
                    thresholds=thresholds,
                ),
                "phash_best": phash_pair_scores(planted["gallery"], planted["origin"]),
            }
        validation = [g["thresholds"] for g in results["galleries"].values()
                      if g["role"] == "validation"]  # fmt: skip
        results["balanced_threshold"] = balanced_threshold(*validation)
        print(f"balanced on the validation galleries: {results['balanced_threshold']}")
        results["speed"] = bench_speed(Path(work), args.count, args.rounds)
    for name, measured in results["galleries"].items():
        if measured["role"] != "evaluation":
            continue
        rows = measured["thresholds"]
        kinds = list(rows[0]["recall_by_alteration"])
        header = ["threshold", "groups", "pairs found", "true pairs", "precision", "recall",
                  "F1", *kinds]  # fmt: skip
        table = [[*list(row.values())[:7], *row["recall_by_alteration"].values()] for row in rows]
        print(markdown_table(header, table, title=name))
        best = measured["phash_best"]
        print(f"pHash best: Hamming <= {best['hamming']}, precision {best['precision']}, "
              f"recall {best['recall']}, F1 {best['f1']}")  # fmt: skip
    print(json.dumps(results["speed"], indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "duplicates.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
