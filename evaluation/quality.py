"""`python -m evaluation.quality`: same-item retrieval on a gallery set, at every feature budget.

    python -m evaluation.quality --set DIR --model CKPT [--model CKPT ...] [--split test|val]

DIR is a gallery set written by `python -m evaluation.galleries`. Each query is drawn by a style
that is not in the gallery; its relevant items are the gallery images of the same name.
Same-item recall@10 of a query = |relevant in the top 10| / min(#relevant, 10), averaged over
the queries that have a relevant item. Every model is measured next to raw-pixel PCA-k fitted
on the same gallery, on clean queries and on queries photographed badly (`perturb`), and each
tri-factor model's importance is checked: gaps in its top 16, its first k against a random k.
"""

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from evaluation.compare import pca_basis
from evaluation.galleries import ITEMS_FILE
from evaluation.metrics import (
    hamming_recall,
    identifiability,
    importance_gaps,
    same_item_recall,
)
from models.config import EncoderConfig, read_config
from models.imagefiles import open_image
from models.preprocess import to_pixels

# FAISS and torch are imported by the functions that use them: --help answers at once.

logger = logging.getLogger(__name__)

BUDGETS = (4, 8, 16, 32, 64)
PIXEL_SIZE = 32  # raw-pixel baseline: RGB at 32x32 on black (3,072 values)


@dataclass(frozen=True)
class GallerySet:
    """Paths and names of a gallery set's gallery and queries for one split."""

    gallery: list[Path]
    gallery_names: list[list[str]]
    queries: list[Path]
    query_names: list[list[str]]

    def relevant(self) -> list[np.ndarray]:
        """For each query, the gallery rows that share one of its names."""
        rows_by_name: dict[str, list[int]] = {}
        for row, names in enumerate(self.gallery_names):
            for name in names:
                rows_by_name.setdefault(name, []).append(row)
        return [
            np.unique([r for name in names for r in rows_by_name.get(name, [])]).astype(np.int64)
            for names in self.query_names
        ]


def load_gallery_set(root: Path, split: str = "test") -> GallerySet:
    """test: the query style against the gallery; val: the validation style against the rest,
    or, in a set with its own validation queries (evaluation.photos), those against the gallery."""
    items_path = root / ITEMS_FILE
    if not items_path.is_file():
        raise FileNotFoundError(
            f"{root} is not a gallery set (no {ITEMS_FILE}): "
            "make one with python -m evaluation.galleries"
        )
    items = json.loads(items_path.read_text())
    gallery = sorted(items["gallery"].items())
    if split == "test":
        queries = sorted(items["queries"].items())
        query_root = root / "queries"
    elif split == "val" and "validation_queries" in items:
        queries = sorted(items["validation_queries"].items())
        query_root = root / "validation"
    elif split == "val":
        prefix = items["validation_style"] + "/"
        queries = [(path, names) for path, names in gallery if path.startswith(prefix)]
        gallery = [(path, names) for path, names in gallery if not path.startswith(prefix)]
        query_root = root / "gallery"
    else:
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    return GallerySet(
        gallery=[root / "gallery" / path for path, _ in gallery],
        gallery_names=[names for _, names in gallery],
        queries=[query_root / path for path, _ in queries],
        query_names=[names for _, names in queries],
    )


def phash_codes(paths: list[Path], *, perturbed: bool = False) -> np.ndarray:
    """64-bit perceptual hashes (DCT of the 32x32 grey image) as an Nx64 bool array, of the
    files as they are or as `load_pixels` perturbs them."""
    import imagehash

    rng = np.random.default_rng(0)
    codes = []
    for path in paths:
        image = open_image(path)
        if perturbed:
            image = perturb(image, rng)
        codes.append(imagehash.phash(image).hash.reshape(-1))
    return np.stack(codes)


def backbone_features(encoder, pixels: np.ndarray) -> np.ndarray:
    """A pretrained model's frozen backbone features of uint8 NxHxWxC pixels: N x F."""
    import torch

    from models.encoder import normalize

    backbone = encoder.backbone.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(pixels), 256):
            batch = torch.from_numpy(pixels[start : start + 256]).permute(0, 3, 1, 2)
            chunks.append(backbone(normalize(batch, encoder.config)).numpy())
    return np.concatenate(chunks)


def perturb(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A query photographed badly: rescaled 0.8-1.15, maybe mirrored, shifted <= 3 px, and
    brightness 0.7-1.2, on the image's own canvas size."""
    image = image.convert("RGBA")
    width, height = image.size
    scale = rng.uniform(0.8, 1.15)
    scaled = image.resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR
    )
    if rng.random() < 0.5:
        scaled = scaled.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    dx, dy = rng.integers(-3, 4, size=2)
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    canvas.paste(
        scaled, ((width - scaled.width) // 2 + int(dx), (height - scaled.height) // 2 + int(dy))
    )
    alpha = canvas.getchannel("A")
    bright = ImageEnhance.Brightness(canvas.convert("RGB")).enhance(rng.uniform(0.7, 1.2))
    bright.putalpha(alpha)
    return bright


def load_pixels(paths: list[Path], config: EncoderConfig, *, perturbed: bool = False) -> np.ndarray:
    """uint8 NxHxWxC pixels of image files as the model sees them (optionally perturbed)."""
    rng = np.random.default_rng(0)
    pixels = []
    for path in paths:
        image = open_image(path)
        if perturbed:
            image = perturb(image, rng)
        pixels.append(to_pixels(image, config))
    return np.stack(pixels)


def pixel_features(paths: list[Path], *, perturbed: bool = False) -> np.ndarray:
    """Raw pixels: RGB at PIXEL_SIZE on black, flattened to floats in [0, 1]."""
    config = EncoderConfig(in_channels=3, image_size=PIXEL_SIZE, mean=(0.0,) * 3, std=(1.0,) * 3)
    pixels = load_pixels(paths, config, perturbed=perturbed)
    return pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0


def importance_checks(config: dict, xq: np.ndarray, xb: np.ndarray, relevant) -> dict:
    """Does the learned order mean something? Gaps in the top 16, first k against random k."""
    importance = np.array([config["importance"][j] for j in config["importance_order"]])
    rng = np.random.default_rng(0)
    random_k = {}
    for budget in (4, 8, 16):
        if budget >= xb.shape[1]:
            continue
        scores = []
        for _ in range(3):
            columns = rng.permutation(xb.shape[1])[:budget]
            scores.append(same_item_recall(xq[:, columns], xb[:, columns], relevant, budget))
        random_k[str(budget)] = round(float(np.mean(scores)), 4)
    return {
        **importance_gaps(importance),
        "max_over_min": round(float(importance.max() / max(importance.min(), 1e-12)), 3),
        "random_k_recall": random_k,
    }


def evaluate(
    root: Path, models: list[Path], *, split: str = "test", budgets: tuple[int, ...] = BUDGETS
) -> dict:
    """Recall at every budget for raw-pixel PCA and each model, clean and perturbed queries."""
    from models.checkpoint import load_checkpoint
    from models.inference import embed_in_batches, fast_encoder

    data = load_gallery_set(root, split)
    relevant = data.relevant()
    results: dict = {
        "set": root.name,
        "split": split,
        "gallery": len(data.gallery),
        "queries": len(data.queries),
        "queries_with_relevant": int(sum(1 for r in relevant if len(r))),
        "methods": {},
    }

    def measure(name: str, xq: np.ndarray, xb: np.ndarray, xq_bad: np.ndarray) -> None:
        dims = xb.shape[1]
        ks = sorted({b for b in budgets if b <= dims} | ({dims} if dims < max(budgets) else set()))
        results["methods"][name] = {
            "clean": {str(k): round(same_item_recall(xq, xb, relevant, k), 4) for k in ks},
            "perturbed": {str(k): round(same_item_recall(xq_bad, xb, relevant, k), 4) for k in ks},
            "clean@1": {str(k): round(same_item_recall(xq, xb, relevant, k, 1), 4) for k in ks},
        }
        logger.info("%s: %s", name, results["methods"][name]["clean"])

    def measure_pca(name: str, fb: np.ndarray, fq: np.ndarray, fq_bad: np.ndarray) -> None:
        mean, axes = pca_basis(fb)
        measure(name, (fq - mean) @ axes, (fb - mean) @ axes, (fq_bad - mean) @ axes)

    pixels = [pixel_features(data.gallery), pixel_features(data.queries)]
    measure_pca("raw pixels + PCA to k", *pixels, pixel_features(data.queries, perturbed=True))
    hb, hq = phash_codes(data.gallery), phash_codes(data.queries)
    hq_bad = phash_codes(data.queries, perturbed=True)
    results["methods"]["pHash (64 bits)"] = {
        kind: {"64": round(hamming_recall(codes, hb, relevant, depth), 4)}
        for kind, codes, depth in (("clean", hq, 10), ("perturbed", hq_bad, 10), ("clean@1", hq, 1))
    }
    frozen_done = set()
    for checkpoint in models:
        encoder, _ = load_checkpoint(checkpoint)
        frozen = (encoder.config.backbone, encoder.config.image_size)
        if encoder.config.pretrained is None or frozen in frozen_done:
            continue
        frozen_done.add(frozen)
        features = [
            backbone_features(encoder, load_pixels(paths, encoder.config, perturbed=bad))
            for paths, bad in ((data.gallery, False), (data.queries, False), (data.queries, True))
        ]
        measure_pca(f"{frozen[0]} at {frozen[1]} px, frozen + PCA to k", *features)

    gallery_embeddings = {}
    folder_names = [checkpoint.name for checkpoint in models]
    for checkpoint in models:
        config, encoder = read_config(checkpoint), fast_encoder(checkpoint)
        # Two models in folders of the same name (runs/a/seed0, runs/b/seed0) keep their parent.
        shown = checkpoint.name
        if folder_names.count(shown) > 1:
            shown = f"{checkpoint.parent.name}/{shown}"
        name = f"{shown} ({config['training']['loss']})"
        xb = embed_in_batches(encoder, load_pixels(data.gallery, encoder.config))
        xq = embed_in_batches(encoder, load_pixels(data.queries, encoder.config))
        xq_bad = embed_in_batches(
            encoder, load_pixels(data.queries, encoder.config, perturbed=True)
        )
        measure(name, xq, xb, xq_bad)
        gallery_embeddings[name] = (config["training"]["loss"], xb)
        results["methods"][name]["train_seconds"] = config["training"].get("seconds")
        if config["encoder"].get("learn_importance", True):
            results["methods"][name]["importance"] = importance_checks(config, xq, xb, relevant)
    results["identifiability"] = {
        f"{a} vs {b}": identifiability(xa, xb, 8)
        for (a, (loss_a, xa)), (b, (loss_b, xb)) in combinations(gallery_embeddings.items(), 2)
        if loss_a == loss_b and min(xa.shape[1], xb.shape[1]) >= 8
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.quality", description=__doc__)
    parser.add_argument("--set", type=Path, required=True, help="gallery set directory")
    parser.add_argument("--model", type=Path, action="append", default=[], help="checkpoint")
    parser.add_argument("--split", choices=["test", "val"], default="test")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        results = evaluate(args.set, args.model, split=args.split, budgets=tuple(args.budgets))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        write_plot(results, args.json.with_suffix(".png"))
    return 0


def write_plot(results: dict, path: Path) -> None:
    """Recall@10 against the budget: one line per method, dashed for perturbed queries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name, method in results["methods"].items():
        for kind, style in (("clean", "-"), ("perturbed", ":")):
            budgets = sorted(int(k) for k in method[kind])
            values = [method[kind][str(k)] for k in budgets]
            label = name if kind == "clean" else None
            line = axis.plot(budgets, values, style, marker="o", label=label)
            if kind == "clean":
                colour = line[0].get_color()
            else:
                line[0].set_color(colour)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("feature budget k (first k dimensions)")
    axis.set_ylabel("same-item recall@10")
    axis.set_title(
        f"{results['set']} ({results['split']}): {results['queries']} queries, "
        f"{results['gallery']} gallery images; dotted: perturbed queries",
        fontsize=9,
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def render_table(results: dict) -> str:
    """Markdown: one row per method and query kind, one column per budget."""
    budgets = sorted({int(k) for m in results["methods"].values() for k in m["clean"]})
    lines = [
        f"{results['set']} ({results['split']}): {results['queries']} queries, "
        f"{results['gallery']} gallery images; same-item recall@10",
        "",
        "| method | queries | " + " | ".join(f"k={k}" for k in budgets) + " |",
        "| --- | --- |" + " --- |" * len(budgets),
    ]
    shown = {"clean": "clean", "perturbed": "perturbed", "clean@1": "clean, recall@1"}
    for name, method in results["methods"].items():
        for kind, label in shown.items():
            if kind not in method:
                continue
            cells = [
                f"{method[kind][str(k)]:.3f}" if str(k) in method[kind] else "" for k in budgets
            ]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    for pair, values in results.get("identifiability", {}).items():
        lines.append(f"identifiability {pair}: {values}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
