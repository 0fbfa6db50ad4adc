"""Command line: `python -m models train ...` and `python -m models evaluate ...`."""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from models.config import EncoderConfig
from models.losses import LOSSES
from models.recipes import describe_importance, recipe_for_data
from models.train import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train an encoder self-supervised")
    train_parser.add_argument(
        "--data", default="fashion-mnist", help="'fashion-mnist' or an image folder"
    )
    train_parser.add_argument("--loss", choices=sorted(LOSSES), default=TrainConfig.loss)
    train_parser.add_argument(
        "--epochs", type=int, default=None, help="default: about 2,000 optimiser steps"
    )
    train_parser.add_argument(
        "--out", type=Path, required=True, help="checkpoint directory to write"
    )
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train_parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: 256 for fashion-mnist, 128 for a folder",
    )
    train_parser.add_argument("--lr", type=float, default=TrainConfig.learning_rate)
    train_parser.add_argument(
        "--importance-lr", type=float, default=TrainConfig.importance_learning_rate,
        help="SGD learning rate of the importance logits s",
    )  # fmt: skip
    train_parser.add_argument("--embedding-dim", type=int, default=EncoderConfig.embedding_dim)
    train_parser.add_argument(
        "--image-size", type=int, default=None, help="input side (default: read from the images)"
    )
    train_parser.add_argument(
        "--channels", type=int, choices=[1, 3], default=None,
        help="default: 3 if the images have colour, else 1",
    )  # fmt: skip
    train_parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out after its last epoch"
    )

    evaluate_parser = commands.add_parser(
        "evaluate", help="P@10 and mAP@100 on Fashion-MNIST at each budget"
    )
    evaluate_parser.add_argument("--model", type=Path, default=DEFAULT_CHECKPOINT)
    evaluate_parser.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    evaluate_parser.add_argument("--split", choices=["test", "val"], default="test")
    evaluate_parser.add_argument("--queries", type=int, default=10000, help="first N queries")
    evaluate_parser.add_argument("--json", type=Path, default=None, help="also write results here")

    compare_parser = commands.add_parser(
        "compare", help="every method at every budget (docs/results)"
    )
    compare_parser.add_argument("--runs", type=Path, required=True, help="folder of <loss>-seed<S>")
    compare_parser.add_argument("--split", choices=["test", "val"], default="test")
    compare_parser.add_argument("--out", type=Path, default=Path("docs"))

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs each CPU probe
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "compare":
            return _compare(args)
        return _evaluate(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    recipe = recipe_for_data(
        args.data, channels=args.channels, image_size=args.image_size,
        embedding_dim=args.embedding_dim,
    )  # fmt: skip
    print(
        f"training on {args.data}: {recipe.encoder.in_channels} channel(s), "
        f"{recipe.encoder.image_size}x{recipe.encoder.image_size} pixels",
        file=sys.stderr,
    )
    config = TrainConfig(
        data=args.data,
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size or recipe.batch_size,
        learning_rate=args.lr,
        importance_learning_rate=args.importance_lr,
        seed=args.seed,
        device=args.device,
    )
    written = train(
        config, args.out, encoder_config=recipe.encoder, augment_config=recipe.augment,
        resume=args.resume,
    )  # fmt: skip
    training = written["training"]
    print(
        f"wrote {args.out} ({written['id']}): {training['epochs']} epochs "
        f"on {training['images']} images "
        f"in {training['seconds']:.0f} s ({training['images_per_second']:.0f} img/s), "
        f"final loss {training['final_loss']}"
    )
    print(describe_importance(written))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from models.evaluate import embed_pixels, load_split, retrieval_metrics

    encoder, config = load_checkpoint(args.model)
    query_images, query_labels, gallery_images, gallery_labels = load_split(args.split)
    query_images, query_labels = query_images[: args.queries], query_labels[: args.queries]
    started = time.perf_counter()
    xb = embed_pixels(encoder, gallery_images[:, None])
    xq = embed_pixels(encoder, query_images[:, None])
    embed_seconds = time.perf_counter() - started
    dim = xb.shape[1]
    budgets = sorted({b for b in args.budgets if 1 <= b <= dim} | {dim})
    metrics = {b: retrieval_metrics(xq, query_labels, xb, gallery_labels, b) for b in budgets}
    results = {
        "model": config["id"],
        "split": args.split,
        "queries": len(xq),
        "gallery": len(xb),
        "embed_seconds": round(embed_seconds, 1),
        "p_at_10": {str(b): round(m["p_at_10"], 4) for b, m in metrics.items()},
        "map_at_100": {str(b): round(m["map_at_100"], 4) for b, m in metrics.items()},
    }
    full = metrics[dim]["p_at_10"]
    print(
        f"model {config['id']} on {args.split}: {len(xq)} queries, {len(xb)} gallery, "
        f"embedded in {embed_seconds:.0f} s"
    )
    print("budget  P@10   kept  mAP@100")
    for budget, values in metrics.items():
        kept = values["p_at_10"] / full
        print(f"{budget:>6}  {values['p_at_10']:.3f}  {kept:5.1%}  {values['map_at_100']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from models.compare import compare
    from models.report import render_markdown

    results = compare(args.runs, args.out, split=args.split)
    print(render_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
