"""`python -m evaluation.claims`: which of the triCL paper's claims hold for trained models.

    python -m evaluation.claims --runs DIR --data fashion-mnist|SET --out docs/claims-NAME.json

DIR holds pairs of runs `<variant>-seed0` and `<variant>-seed1` (a variant is a backbone, a
head and a loss, e.g. `lite0-mlp-tricl-spectral`). For each variant:

- **S discriminates**: the smallest relative gap between neighbours among the top 16
  softplus(s) values (the claim needs every one >= 1%), and the spectrum itself;
- **S orders**: quality of the first k dimensions against k random ones and the last k, at
  every k <= 16 (the paper's figure 3), on the seed-0 model;
- **identifiability**: two seeds learn the same features: mean |Pearson correlation| of
  same-rank dimensions over the test images (top 8 and 16), and the same after the best
  one-to-one matching of dimensions with signs free.

Quality is P@10 (same class) on Fashion-MNIST (1,000 test queries against the first 10,000
training images) or same-item recall@10 on a gallery set's test split.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from evaluation.evaluate import load_split
from evaluation.metrics import identifiability, importance_gaps, retrieval_metrics, same_item_recall
from evaluation.quality import load_gallery_set, load_pixels
from models.config import read_config
from models.datasets import model_pixels

# SciPy and torch are imported by the functions that use them: --help answers at once.

logger = logging.getLogger(__name__)

TOP = (8, 16)
BUDGETS = tuple(range(1, 17))
FASHION_QUERIES, FASHION_GALLERY = 1000, 10_000


def order_curves(quality, xq: np.ndarray, xb: np.ndarray, budgets=BUDGETS) -> dict:
    """Quality of the first k, a random k (mean of 3 draws) and the last k dimensions."""
    rng = np.random.default_rng(0)
    dims = xb.shape[1]
    curves: dict[str, dict[str, float]] = {"first": {}, "random": {}, "last": {}}
    for k in budgets:
        if k > dims:
            continue
        curves["first"][str(k)] = quality(xq, xb, np.arange(k))
        curves["last"][str(k)] = quality(xq, xb, np.arange(dims - k, dims))
        draws = [quality(xq, xb, rng.permutation(dims)[:k]) for _ in range(3)]
        curves["random"][str(k)] = float(np.mean(draws))
    return {name: {k: round(v, 4) for k, v in curve.items()} for name, curve in curves.items()}


def _fashion_data():
    """Embedder of a run's queries and gallery, and the quality of chosen columns."""
    from models.inference import embed_in_batches, fast_encoder

    queries, yq, gallery, yb = load_split("test")
    queries, yq = queries[:FASHION_QUERIES], yq[:FASHION_QUERIES]
    gallery, yb = gallery[:FASHION_GALLERY], yb[:FASHION_GALLERY]

    def embed(run: Path) -> tuple[np.ndarray, np.ndarray]:
        encoder = fast_encoder(run)
        return tuple(
            embed_in_batches(encoder, model_pixels(images, encoder.config))
            for images in (queries, gallery)
        )

    def quality(xq: np.ndarray, xb: np.ndarray, columns: np.ndarray) -> float:
        return retrieval_metrics(xq[:, columns], yq, xb[:, columns], yb, len(columns))["p_at_10"]

    return embed, quality


def _gallery_data(root: Path):
    from models.inference import embed_in_batches, fast_encoder

    data = load_gallery_set(root, "test")
    relevant = data.relevant()

    def embed(run: Path) -> tuple[np.ndarray, np.ndarray]:
        encoder = fast_encoder(run)
        return tuple(
            embed_in_batches(encoder, load_pixels(paths, encoder.config))
            for paths in (data.queries, data.gallery)
        )

    def quality(xq: np.ndarray, xb: np.ndarray, columns: np.ndarray) -> float:
        return same_item_recall(xq[:, columns], xb[:, columns], relevant, len(columns))

    return embed, quality


def measure(runs: Path, data: str) -> dict:
    """Every variant with two seeds in `runs`, measured on `data`."""
    embed, quality = _fashion_data() if data == "fashion-mnist" else _gallery_data(Path(data))
    variants = sorted(
        path.name.removesuffix("-seed0")
        for path in runs.glob("*-seed0")
        if (runs / path.name.replace("-seed0", "-seed1") / "config.json").is_file()
    )
    results = {"data": data, "variants": {}}
    for variant in variants:
        first, second = runs / f"{variant}-seed0", runs / f"{variant}-seed1"
        config = read_config(first)
        xq, xb = embed(first)
        xq_other, _ = embed(second)
        measured = {
            "loss": config["training"]["loss"],
            "backbone": config["encoder"].get("backbone", "small-cnn"),
            "projector_hidden": config["encoder"]["projector_hidden"],
            "quality_full": round(quality(xq, xb, np.arange(xb.shape[1])), 4),
            "order": order_curves(quality, xq, xb),
            "identifiability": {f"top{top}": identifiability(xq, xq_other, top) for top in TOP},
        }
        if config["encoder"].get("learn_importance", True):
            measured["importance"] = {
                "spectrum": sorted(config["importance"], reverse=True),
                **importance_gaps(config["importance"]),
            }
        results["variants"][variant] = measured
        logger.info("%s: %s", variant, {k: v for k, v in measured.items() if k != "order"})
    return results


def write_plots(results: dict, out: Path) -> None:
    """The importance spectra, and first / random / last k against k (figure 3 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = results["variants"]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name, measured in variants.items():
        if "importance" in measured:
            spectrum = measured["importance"]["spectrum"]
            axis.plot(range(1, len(spectrum) + 1), spectrum, label=name)
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("rank of dimension")
    axis.set_ylabel("softplus(s)")
    axis.set_title(f"Learned importance, sorted ({results['data']})", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out.with_name(out.stem + "-spectra.png"), dpi=100)
    plt.close(figure)

    columns = min(4, len(variants))
    rows = max(1, -(-len(variants) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for axis, (name, measured) in zip(axes.flat, variants.items(), strict=False):
        for curve, style in (("first", "-"), ("random", "--"), ("last", ":")):
            ks = [int(k) for k in measured["order"][curve]]
            axis.plot(ks, list(measured["order"][curve].values()), style, label=f"{curve} k")
        axis.set_title(name, fontsize=8)
        axis.set_xlabel("k", fontsize=8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(variants) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out.with_name(out.stem + "-order.png"), dpi=100)
    plt.close(figure)


def render_table(results: dict) -> str:
    lines = [
        "| variant | loss | head | full quality | top-16 smallest gap | first 8 / random 8 | "
        "same-rank top 8 | matched top 8 | same-rank top 16 | matched top 16 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in results["variants"].items():
        gap = m.get("importance", {}).get("top16_smallest_gap")
        head = "linear" if m["projector_hidden"] == 0 else f"MLP {m['projector_hidden']}"
        ident = m["identifiability"]
        lines.append(
            f"| {name} | {m['loss']} | {head} | {m['quality_full']:.3f} | "
            f"{'' if gap is None else f'{gap:.2%}'} | "
            f"{m['order']['first']['8']:.3f} / {m['order']['random']['8']:.3f} | "
            f"{ident['top8']['same_rank']:.3f} | {ident['top8']['matched']:.3f} | "
            f"{ident['top16']['same_rank']:.3f} | {ident['top16']['matched']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.claims", description=__doc__)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--data", required=True, help="fashion-mnist or a gallery set")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        results = measure(args.runs, args.data)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render_table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    write_plots(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
