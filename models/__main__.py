"""Command line: `python -m models train --data fashion-mnist|FOLDER --out DIR`."""

import argparse
import logging
import sys
from pathlib import Path

from models.config import BACKBONES, EncoderConfig
from models.options import from_arguments

# The losses' names and TrainConfig's defaults, repeated here: models.losses and models.train
# import torch, which --help should not wait for. tests/test_cli.py keeps them equal.
LOSS_NAMES = ("mrl", "simclr", "tricl", "tricl-nested", "tricl-spectral")
TRAIN_DEFAULTS = {
    "loss": "tricl-nested",
    "views": 4,
    "learning_rate": 2e-3,
    "importance_learning_rate": 2.0,
    "tau": 1.0,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train an encoder self-supervised")
    train_parser.add_argument(
        "--data", default="fashion-mnist", help="'fashion-mnist' or an image folder"
    )
    train_parser.add_argument("--loss", choices=LOSS_NAMES, default=TRAIN_DEFAULTS["loss"])
    train_parser.add_argument(
        "--backbone", choices=BACKBONES, default=None,
        help="efficientnet-lite0 (pretrained, frozen: a head is trained) or small-cnn (trained "
        "from scratch); default: efficientnet-lite0",
    )  # fmt: skip
    train_parser.add_argument(
        "--epochs", type=int, default=None,
        help="small CNN or --finetune: passes over the images (default: about 2,000 steps)",
    )  # fmt: skip
    train_parser.add_argument(
        "--steps", type=int, default=None,
        help="head on a pretrained backbone: optimiser steps (default: 2,000)",
    )  # fmt: skip
    train_parser.add_argument(
        "--views", type=int, default=TRAIN_DEFAULTS["views"],
        help="head on a pretrained backbone: cached views per image",
    )  # fmt: skip
    train_parser.add_argument(
        "--finetune", action="store_true",
        help="after the head, train the pretrained backbone's last blocks too (use a GPU)",
    )  # fmt: skip
    train_parser.add_argument(
        "--out", type=Path, required=True, help="checkpoint directory to write"
    )
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train_parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: 256 for a head or fashion-mnist, 128 for the small CNN on a folder",
    )
    train_parser.add_argument("--lr", type=float, default=TRAIN_DEFAULTS["learning_rate"])
    train_parser.add_argument(
        "--tau", type=float, default=TRAIN_DEFAULTS["tau"],
        help="weight of the decorrelation (tricl, tricl-nested) or orthonormality "
        "(tricl-spectral) penalty",
    )  # fmt: skip
    train_parser.add_argument(
        "--importance-lr", type=float, default=TRAIN_DEFAULTS["importance_learning_rate"],
        help="SGD learning rate of the importance logits s",
    )  # fmt: skip
    train_parser.add_argument("--embedding-dim", type=int, default=EncoderConfig.embedding_dim)
    train_parser.add_argument(
        "--projector-hidden", type=int, default=None,
        help="hidden units of the projector; 0 makes it linear (default: 512)",
    )  # fmt: skip
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

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs each CPU probe
    try:
        return _train(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    # Imported here, not at the top: both load torch.
    from models.recipes import describe_importance, recipe_for_data
    from models.train import TrainConfig, train

    recipe = recipe_for_data(
        args.data, backbone=args.backbone, channels=args.channels, image_size=args.image_size,
        embedding_dim=args.embedding_dim, projector_hidden=args.projector_hidden,
    )  # fmt: skip
    print(
        f"training on {args.data}: {recipe.encoder.backbone}, "
        f"{recipe.encoder.in_channels} channel(s), "
        f"{recipe.encoder.image_size}x{recipe.encoder.image_size} pixels",
        file=sys.stderr,
    )
    config = from_arguments(
        TrainConfig,
        args,
        batch_size=args.batch_size or recipe.batch_size,
        learning_rate=args.lr,
        importance_learning_rate=args.importance_lr,
    )
    written = train(
        config, args.out, encoder_config=recipe.encoder, augment_config=recipe.augment,
        resume=args.resume,
    )  # fmt: skip
    training = written["training"]
    print(
        f"wrote {args.out} ({written['id']}): {training['steps']} {training['stage']} steps "
        f"on {training['images']} images in {training['seconds']:.0f} s, "
        f"final loss {training['final_loss']}"
    )
    print(describe_importance(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
