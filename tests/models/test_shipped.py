"""The models shipped in models/: what each is, that the loss version that made it is current,
and that the general model finds attacked copies of real photographs it never saw."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from models.checkpoint import (
    DEFAULT_CHECKPOINT,
    FASHION_MNIST_CHECKPOINT,
    GENERAL_CHECKPOINT,
    SMALL_CNN_CHECKPOINT,
    load_checkpoint,
)
from models.config import CONFIG_FILE, MODEL_FILES
from models.inference import embed_pixels, for_inference
from models.losses import LOSS_VERSIONS
from models.preprocess import to_pixels

PHOTOS = sorted((Path(__file__).parents[1] / "data" / "photos").glob("*.jpg"))
SHIPPED = {
    GENERAL_CHECKPOINT: "efficientnet-lite0",
    FASHION_MNIST_CHECKPOINT: "efficientnet-lite0",
    SMALL_CNN_CHECKPOINT: "small-cnn",
}


def test_indexing_without_a_model_uses_the_general_model():
    assert DEFAULT_CHECKPOINT == GENERAL_CHECKPOINT


@pytest.mark.parametrize("checkpoint", SHIPPED, ids=lambda path: path.name)
def test_each_shipped_model_names_its_backbone_and_the_loss_version_that_made_it(checkpoint):
    config = json.loads((checkpoint / CONFIG_FILE).read_text())
    assert config["encoder"].get("backbone", "small-cnn") == SHIPPED[checkpoint]
    training = config["training"]
    assert 1 <= training["loss_version"] <= LOSS_VERSIONS[training["loss"]]


@pytest.mark.parametrize("checkpoint", [GENERAL_CHECKPOINT, FASHION_MNIST_CHECKPOINT])
def test_the_default_models_were_made_by_todays_loss(checkpoint):
    training = json.loads((checkpoint / CONFIG_FILE).read_text())["training"]
    assert training["loss_version"] == LOSS_VERSIONS[training["loss"]]
    assert {path.name for path in checkpoint.iterdir()} <= set(MODEL_FILES) | {"metrics.json"}


def _attacked(photo: Image.Image) -> Image.Image:
    """A copy as people repost it: cropped to 70%, turned, recoloured, smaller."""
    width, height = photo.size
    crop = photo.crop((width * 0.1, height * 0.2, width * 0.8, height * 0.9))
    turned = crop.rotate(8, resample=Image.Resampling.BILINEAR)
    return ImageEnhance.Color(turned).enhance(1.5).resize((width // 3, height // 3))


def test_the_general_model_finds_attacked_copies_of_unseen_photos_at_16_features():
    encoder = for_inference(load_checkpoint(GENERAL_CHECKPOINT)[0])
    photos = [Image.open(path).convert("RGB") for path in PHOTOS]
    originals = np.stack([to_pixels(photo, encoder.config) for photo in photos])
    copies = np.stack([to_pixels(_attacked(photo), encoder.config) for photo in photos])
    gallery = embed_pixels(encoder, originals, keep=16)
    queries = embed_pixels(encoder, copies, keep=16)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    assert (queries @ gallery.T).argmax(axis=1).tolist() == list(range(len(photos)))
