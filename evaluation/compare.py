"""`python -m evaluation.compare`: docs/results.md, every method at every budget on the same
queries.

Reads trained checkpoints named `<loss>-seed<S>` from one folder, embeds the queries and the
gallery once per model, and measures P@10 and mAP@100 at each budget for the product (nested
triCL in importance order), its ablations (random and reverse order) and the alternatives a
user would pick instead (SimCLR, SimCLR + PCA, raw pixels + PCA, Matryoshka, the paper's
triCL). Also: identifiability across seeds and the images at the extremes of the top features.
"""

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.evaluate import SPLITS, load_split
from evaluation.metrics import identifiability, retrieval_metrics
from evaluation.results_page import PRODUCT_METHOD, render_markdown, write_plots
from models.config import read_config
from models.datasets import model_pixels

logger = logging.getLogger(__name__)

BUDGETS = (1, 2, 4, 8, 16, 32, 64, 128)
PRODUCT = "tricl-nested"


@dataclass(frozen=True)
class Embedded:
    """A model's query and gallery embeddings (importance order) and its checkpoint config."""

    xq: np.ndarray
    xb: np.ndarray
    config: dict


def pca_basis(xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and principal axes (columns, by decreasing variance) of the gallery rows."""
    mean = xb.mean(axis=0, dtype=np.float64)
    centred = xb - mean
    covariance = centred.T @ centred / len(xb)
    _, eigenvectors = np.linalg.eigh(covariance)  # ascending eigenvalues
    return mean.astype(np.float32), eigenvectors[:, ::-1].astype(np.float32)


def compare(
    runs: Path,
    out: Path,
    *,
    split: str = "test",
    budgets: tuple[int, ...] = BUDGETS,
    root: Path | None = None,
) -> dict:
    """Measure every method found in `runs`, write results JSON, markdown tables and plots."""
    xq_pixels, yq, xb_pixels, yb = load_split(split, root)
    models = _embed_runs(runs, xq_pixels, xb_pixels)
    if f"{PRODUCT}-seed0" not in models:
        raise ValueError(f"{runs} has no {PRODUCT}-seed0 checkpoint: train it first")
    dim = models[f"{PRODUCT}-seed0"].xb.shape[1]
    budgets = sorted({b for b in budgets if b <= dim} | {dim})
    methods = _method_embeddings(models, xq_pixels, xb_pixels, dim)

    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, (xq, xb) in methods.items():
        table[name] = {}
        for budget in budgets:
            table[name][str(budget)] = retrieval_metrics(xq, yq, xb, yb, budget)
        if xq.shape[1] > dim:  # raw pixels: also report all 784 of them
            table[name][str(xq.shape[1])] = retrieval_metrics(xq, yq, xb, yb, xq.shape[1])
        logger.info(
            "%s: P@10 %s", name, {k: round(v["p_at_10"], 3) for k, v in table[name].items()}
        )

    results = {
        "split": split,
        "queries": len(yq),
        "gallery": len(yb),
        "budgets": budgets,
        "methods": table,
        "identifiability": _identifiability(models),
        "models": {
            name: {
                "id": m.config["id"],
                "loss": m.config["training"]["loss"],
                "seed": m.config["training"]["seed"],
                "epochs": m.config["training"]["epochs"],
                "train_seconds": m.config["training"].get("seconds"),
                "importance": [m.config["importance"][j] for j in m.config["importance_order"]],
            }
            for name, m in models.items()
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"results-{split}.json").write_text(json.dumps(results, indent=2) + "\n")
    write_plots(results, models[f"{PRODUCT}-seed0"], xb_pixels, out)
    return results


def _embed_runs(runs: Path, xq_pixels: np.ndarray, xb_pixels: np.ndarray) -> dict[str, Embedded]:
    from models.inference import embed_in_batches, fast_encoder  # torch: --help does not wait

    models = {}
    for checkpoint in sorted(p for p in runs.iterdir() if (p / "config.json").is_file()):
        config, encoder = read_config(checkpoint), fast_encoder(checkpoint)
        started = time.perf_counter()
        models[checkpoint.name] = Embedded(
            xq=embed_in_batches(encoder, model_pixels(xq_pixels, encoder.config)),
            xb=embed_in_batches(encoder, model_pixels(xb_pixels, encoder.config)),
            config=config,
        )
        logger.info("embedded with %s in %.0f s", checkpoint.name, time.perf_counter() - started)
    return models


def _method_embeddings(
    models: dict[str, Embedded], xq_pixels: np.ndarray, xb_pixels: np.ndarray, dim: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Method name -> (queries, gallery) whose first k columns are that method at budget k."""
    product = models[f"{PRODUCT}-seed0"]
    shuffled = np.random.default_rng(0).permutation(dim)
    methods = {
        PRODUCT_METHOD: (product.xq, product.xb),
        "triCL nested, random order": (product.xq[:, shuffled], product.xb[:, shuffled]),
        "triCL nested, reverse order": (product.xq[:, ::-1], product.xb[:, ::-1]),
    }
    if "tricl-seed0" in models:
        paper = models["tricl-seed0"]
        methods["triCL paper loss, importance order"] = (paper.xq, paper.xb)
    if "simclr-seed0" in models:
        simclr = models["simclr-seed0"]
        methods["SimCLR, first k"] = (simclr.xq, simclr.xb)
        mean, axes = pca_basis(simclr.xb)
        methods["SimCLR + PCA to k"] = ((simclr.xq - mean) @ axes, (simclr.xb - mean) @ axes)
    if "mrl-seed0" in models:
        methods["Matryoshka (MRL), first k"] = (models["mrl-seed0"].xq, models["mrl-seed0"].xb)
    pixels_q = xq_pixels.reshape(len(xq_pixels), -1).astype(np.float32) / 255.0
    pixels_b = xb_pixels.reshape(len(xb_pixels), -1).astype(np.float32) / 255.0
    mean, axes = pca_basis(pixels_b)
    methods["raw pixels + PCA to k"] = ((pixels_q - mean) @ axes, (pixels_b - mean) @ axes)
    return methods


def _identifiability(models: dict[str, Embedded]) -> dict[str, dict[str, float]]:
    """Per loss with two seeds: mean |corr| of same-rank dims over the test queries."""
    found = {}
    for loss in ("tricl-nested", "tricl", "simclr", "mrl"):
        first, second = models.get(f"{loss}-seed0"), models.get(f"{loss}-seed1")
        if first is None or second is None:
            continue
        found[loss] = {
            f"top{top}": identifiability(first.xq, second.xq, top)["same_rank"] for top in (8, 16)
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.compare", description=__doc__)
    parser.add_argument("--runs", type=Path, required=True, help="folder of <loss>-seed<S>")
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        results = compare(args.runs, args.out, split=args.split)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
