"""`python -m evaluation.evaluate`: P@10 and mAP@100 of one model on Fashion-MNIST at each budget.

Also the metric and the splits that `evaluation.compare` measures every method with.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from evaluation.metrics import retrieval_metrics
from models.config import read_config
from models.datasets import load_fashion_mnist, model_pixels

# FAISS and torch are imported by the functions that use them: --help answers at once.

SPLITS = ("test", "val")
VALIDATION_SIZE = 10_000


def load_split(
    split: str, root: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Queries and gallery (uint8 images, labels) for "test" or "val".

    test: the 10,000 test images against the 60,000 training images.
    val: the last 10,000 training images against the first 50,000, for choosing recipes
    without looking at the test queries.
    """
    train_images, train_labels = load_fashion_mnist("train", root)
    if split == "test":
        test_images, test_labels = load_fashion_mnist("test", root)
        return test_images, test_labels, train_images, train_labels
    if split == "val":
        cut = len(train_images) - VALIDATION_SIZE
        return train_images[cut:], train_labels[cut:], train_images[:cut], train_labels[:cut]
    raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.evaluate", description=__doc__)
    parser.add_argument(
        "--model", type=Path, help="checkpoint directory (default: the shipped Fashion-MNIST one)"
    )
    parser.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--queries", type=int, default=10000, help="first N queries")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    from models.checkpoint import FASHION_MNIST_CHECKPOINT
    from models.inference import embed_in_batches, fast_encoder

    model = args.model or FASHION_MNIST_CHECKPOINT
    try:
        config = read_config(model)
        encoder = fast_encoder(model)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    query_images, query_labels, gallery_images, gallery_labels = load_split(args.split)
    query_images, query_labels = query_images[: args.queries], query_labels[: args.queries]
    started = time.perf_counter()
    xb = embed_in_batches(encoder, model_pixels(gallery_images, encoder.config))
    xq = embed_in_batches(encoder, model_pixels(query_images, encoder.config))
    embed_seconds = time.perf_counter() - started
    dim = xb.shape[1]
    budgets = sorted({b for b in args.budgets if 1 <= b <= dim} | {dim})
    metrics = {b: retrieval_metrics(xq, query_labels, xb, gallery_labels, b) for b in budgets}
    print(
        f"model {config['id']} on {args.split}: {len(xq)} queries, {len(xb)} gallery, "
        f"embedded in {embed_seconds:.0f} s"
    )
    print("budget  P@10   kept  mAP@100")
    full = metrics[dim]["p_at_10"]
    for budget, values in metrics.items():
        kept = values["p_at_10"] / full
        print(f"{budget:>6}  {values['p_at_10']:.3f}  {kept:5.1%}  {values['map_at_100']:.3f}")
    if args.json:
        results = {
            "model": config["id"],
            "split": args.split,
            "queries": len(xq),
            "gallery": len(xb),
            "embed_seconds": round(embed_seconds, 1),
            "p_at_10": {str(b): round(m["p_at_10"], 4) for b, m in metrics.items()},
            "map_at_100": {str(b): round(m["map_at_100"], 4) for b, m in metrics.items()},
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
