"""What the training command chooses when the user gives only `--data`."""

from dataclasses import dataclass
from itertools import pairwise

from models.augment import AugmentConfig
from models.config import PRETRAINED_BACKBONES, EncoderConfig
from models.datasets import describe_folder, folder_image_files
from models.train import TrainConfig

# Icons, drawings and product shots: colour and layout identify the item, so views keep their
# colours (no grayscale) and are shifted and zoomed in or out rather than cut to a quarter.
FOLDER_AUGMENT = AugmentConfig(
    crop_scale=(0.4, 1.3), brightness=0.3, contrast=0.3, grayscale_probability=0.0
)
# A head on a pretrained backbone, for any folder: photographs are cropped, turned, recoloured
# and re-encoded by the people who copy them; the backbone already knows what things are.
HEAD_AUGMENT = AugmentConfig(
    crop_scale=(0.25, 1.0), rotation=15.0, saturation=0.4, grayscale_probability=0.1
)


# 512 views of 32x32 take about 0.9 s a step on 2 cores; 128 images a step keeps about 2,000
# steps within 20 minutes whatever the gallery's size.
FOLDER_BATCH_SIZE = 128
# A head on cached features: a step over 256 images costs milliseconds.
HEAD_BATCH_SIZE = 256
# What training uses when no backbone is named, for a folder and for Fashion-MNIST alike: a head
# on the pretrained backbone beat the small CNN on Fashion-MNIST too (docs/results.md).
DEFAULT_BACKBONE = "efficientnet-lite0"


@dataclass(frozen=True)
class Recipe:
    """The encoder, its augmentations and the batch size chosen for a data source."""

    encoder: EncoderConfig
    augment: AugmentConfig
    batch_size: int


def recipe_for_data(
    data: str,
    *,
    backbone: str | None = None,
    channels: int | None = None,
    image_size: int | None = None,
    embedding_dim: int = EncoderConfig.embedding_dim,
    projector_hidden: int | None = None,
) -> Recipe:
    """Encoder shape and augmentations for "fashion-mnist" or an image folder.

    A pretrained backbone takes RGB at its working size. For the small CNN on a folder,
    channels and the working size are read from the images unless given; mean and std are
    measured on the decoded pixels when training starts.
    """
    backbone = backbone or DEFAULT_BACKBONE
    head = {} if projector_hidden is None else {"projector_hidden": projector_hidden}
    if backbone in PRETRAINED_BACKBONES:
        if data != "fashion-mnist":
            folder_image_files(data)  # a missing or empty folder is reported before any work
        sized = {} if image_size is None else {"image_size": image_size}
        encoder_config = EncoderConfig.for_pretrained(
            backbone, embedding_dim=embedding_dim, **sized, **head
        )
        augment = AugmentConfig() if data == "fashion-mnist" else HEAD_AUGMENT
        return Recipe(encoder_config, augment, HEAD_BATCH_SIZE)
    if data == "fashion-mnist":
        return Recipe(
            EncoderConfig(embedding_dim=embedding_dim, **head),
            AugmentConfig(),
            TrainConfig.batch_size,
        )
    _, files = folder_image_files(data)
    found_channels, found_size = describe_folder(files)
    channels = channels or found_channels
    encoder_config = EncoderConfig(
        in_channels=channels,
        image_size=image_size or found_size,
        embedding_dim=embedding_dim,
        pool_grid=2,
        mean=(0.5,) * channels,  # replaced by the folder's own statistics in train()
        std=(0.25,) * channels,
        **head,
    )
    return Recipe(encoder_config, FOLDER_AUGMENT, FOLDER_BATCH_SIZE)


def describe_importance(config: dict) -> str:
    """One line a user can act on: did the importance S separate the dimensions?"""
    if not config["encoder"].get("learn_importance", True):
        return (
            f"no learned importance ({config['training']['loss']}): "
            "dimensions keep their index order"
        )
    importance = sorted(config["importance"], reverse=True)
    top = importance[: min(16, len(importance))]
    gaps = [(a - b) / a for a, b in pairwise(top) if a > 0]
    smallest = min(gaps) if gaps else 0.0
    verdict = "ordered" if smallest >= 0.01 else "NOT fully ordered (some top values within 1%)"
    return (
        f"importance softplus(s): top {top[0]:.3f}, 16th {top[-1]:.3f}, "
        f"max/min {importance[0] / max(importance[-1], 1e-12):.2f}; "
        f"smallest gap in the top {len(top)} {smallest:.1%}: {verdict}"
    )
