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

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bench.build import bench_build, gallery_or_demo
from bench.machine import describe_run
from bench.report import markdown_table
from indexer.duplicates import (
    DEFAULT_FEATURES,
    DEFAULT_THRESHOLD,
    DuplicateGroups,
    all_pairs_duplicates,
    find_duplicates,
)
from indexer.index_dir import load_index
from models.datasets import load_fashion_mnist
from models.imagefiles import open_image

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


def pair_scores(groups: DuplicateGroups, ids: list[str], origin: dict[str, int]) -> dict:
    """Pairwise precision and recall of the groups against the planted ones."""
    found = {
        frozenset((ids[a], ids[b]))
        for group in groups.groups
        for (a, _), (b, _) in itertools.combinations(group, 2)
    }
    by_origin: dict[int, list[str]] = {}
    for name, position in origin.items():
        by_origin.setdefault(position, []).append(name)
    true = {
        frozenset(pair) for names in by_origin.values() for pair in itertools.combinations(names, 2)
    }
    hits = len(found & true)
    # Which alterations the encoder sees through: each copy paired with its original.
    by_kind: dict[str, list[bool]] = {}
    for name, position in origin.items():
        if name.startswith("planted/"):
            kind = name.split("-", 1)[1].split(".")[0]
            pair = frozenset((name, f"originals/{position:05d}.png"))
            by_kind.setdefault(kind, []).append(pair in found)
    return {
        "threshold": groups.threshold,
        "groups": len(groups.groups),
        "pairs_found": len(found),
        "true_pairs": len(true),
        "precision": round(hits / len(found), 4) if found else 1.0,
        "recall": round(hits / len(true), 4) if true else 1.0,
        "recall_by_alteration": {
            kind: round(sum(hits) / len(hits), 4) for kind, hits in sorted(by_kind.items())
        },
    }


def bench_quality(
    work: Path,
    distinct: int,
    planted: int,
    source: Path | None,
    model: Path | None,
    *,
    skip: int = 0,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[dict]:
    """Pair precision and recall at each threshold on a planted gallery of the distinct
    images after the first `skip`."""
    name = f"planted-{skip}"
    origin = write_planted_gallery(work / name, distinct, planted, source, skip=skip)
    index_dir = work / f"{name}-index"
    bench_build(work / name, index_dir, keep=_keep(model), workers=2, model=model)
    index = load_index(index_dir)
    vectors = np.asarray(index.vectors)
    rows = []
    for threshold in thresholds:
        found = find_duplicates(vectors, threshold)
        rows.append(pair_scores(found, index.ids, origin))
        print(f"  planted after {skip}, threshold {threshold}: {rows[-1]}", flush=True)
    return rows


def balanced_threshold(rows: list[dict]) -> float:
    """The threshold whose lower of precision and recall is highest: both are goals."""
    return max(rows, key=lambda row: min(row["precision"], row["recall"]))["threshold"]


def bench_speed(work: Path, count: int, rounds: int) -> dict:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.duplicates", description=__doc__)
    parser.add_argument("--distinct", type=int, default=5000, help="distinct test images")
    parser.add_argument("--planted", type=int, default=500, help="of them, planted 5 more times")
    parser.add_argument(
        "--source", type=Path, help="folder of distinct images (default: Fashion-MNIST test)"
    )
    parser.add_argument("--model", type=Path, help="model to index with (default: shipped)")
    parser.add_argument("--count", type=int, default=60_000, help="training images for speed")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    results = describe_run("python -m bench.duplicates", argv)
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as work:
        results["validation"] = bench_quality(
            Path(work),
            args.distinct,
            args.planted,
            args.source,
            args.model,
            skip=args.distinct,
            thresholds=VALIDATION_THRESHOLDS,
        )
        results["balanced_threshold"] = balanced_threshold(results["validation"])
        print(f"balanced on the validation gallery: {results['balanced_threshold']}")
        results["planted"] = bench_quality(
            Path(work), args.distinct, args.planted, args.source, args.model
        )
        results["speed"] = bench_speed(Path(work), args.count, args.rounds)
    kinds = list(results["planted"][0]["recall_by_alteration"])
    header = ["threshold", "groups", "pairs found", "true pairs", "precision", "recall", *kinds]
    rows = [
        [*list(row.values())[:6], *row["recall_by_alteration"].values()]
        for row in results["planted"]
    ]
    print(markdown_table(header, rows))
    print(json.dumps(results["speed"], indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "duplicates.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
