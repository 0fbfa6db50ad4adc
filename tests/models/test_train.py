import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import models.train
from models.__main__ import main
from models.augment import augment
from models.checkpoint import CONFIG_FILE, SMALL_CNN_CHECKPOINT, WEIGHTS_FILE, load_checkpoint
from models.config import PRETRAINED_BACKBONES, EncoderConfig
from models.losses import LOSS_VERSIONS
from models.train import TrainConfig, train
from tests.helpers.images import garment

PRETRAINED_INPUT = PRETRAINED_BACKBONES["efficientnet-lite0"]


def make_folder(root, count=24):
    for i in range(count):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(garment(i, 40)).convert("RGB").save(folder / f"{i}.jpg")
    (root / "corrupt.png").write_bytes(b"not a png")
    return root


def train_cli(data, out, seed=0):
    return main(
        ["train", "--data", str(data), "--backbone", "small-cnn", "--loss", "tricl", "--epochs",
         "1", "--batch-size", "8", "--embedding-dim", "16", "--seed", str(seed), "--out",
         str(out), "--device", "cpu"]
    )  # fmt: skip


def test_training_on_a_folder_writes_a_self_describing_checkpoint(tmp_path):
    data = make_folder(tmp_path / "data")
    assert train_cli(data, tmp_path / "ckpt") == 0
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert config["encoder"]["embedding_dim"] == 16
    assert config["training"]["loss"] == "tricl"
    assert config["training"]["loss_version"] == LOSS_VERSIONS["tricl"]
    assert config["training"]["images"] == 24  # the corrupt file was skipped
    assert sorted(config["importance_order"]) == list(range(16))
    importance = [config["importance"][j] for j in config["importance_order"]]
    assert importance == sorted(importance, reverse=True)

    encoder, _ = load_checkpoint(tmp_path / "ckpt")
    images = torch.randn(3, 1, 28, 28)
    assert encoder.embed(images).shape == (3, 16)


def test_training_is_deterministic_for_a_seed(tmp_path):
    data = make_folder(tmp_path / "data")
    train_cli(data, tmp_path / "one", seed=7)
    train_cli(data, tmp_path / "two", seed=7)
    train_cli(data, tmp_path / "other", seed=8)
    one, two = (
        load_file(tmp_path / "one" / WEIGHTS_FILE),
        load_file(tmp_path / "two" / WEIGHTS_FILE),
    )
    other = load_file(tmp_path / "other" / WEIGHTS_FILE)
    assert all(torch.equal(one[name], two[name]) for name in one)
    assert not all(torch.equal(one[name], other[name]) for name in one)


def test_bad_data_folder_is_one_clear_error(tmp_path, capsys):
    assert train_cli(tmp_path / "missing", tmp_path / "ckpt") == 2
    assert "fashion-mnist' or an image folder" in capsys.readouterr().err


def test_shipped_default_checkpoint_loads_without_pickle():
    encoder, config = load_checkpoint(SMALL_CNN_CHECKPOINT)
    assert config["training"]["loss"] == "tricl-nested"
    # Trained with the first definition of tricl-nested, which has changed since.
    assert config["training"]["loss_version"] == 1 < LOSS_VERSIONS["tricl-nested"]
    assert config["training"]["data"] == "fashion-mnist"
    assert encoder.config.embedding_dim == len(config["importance"])
    assert encoder.embed(torch.zeros(2, 1, 28, 28)).shape == (2, encoder.config.embedding_dim)


def colour_folder(root, count=24, size=48):
    """Coloured blobs: red ones and blue ones, so the folder reads as RGB."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        blob = garment(i, size)
        rgb = np.stack([blob, blob // 3, blob // 3] if i % 2 else [blob // 3, blob // 3, blob], -1)
        Image.fromarray(rgb.astype(np.uint8)).save(root / f"{i}.png")
    return root


def test_small_cnn_reads_channels_size_and_statistics_from_the_folder(tmp_path, capsys):
    data = colour_folder(tmp_path / "data")
    assert main(["train", "--data", str(data), "--backbone", "small-cnn", "--out",
                 str(tmp_path / "ckpt"), "--epochs", "1", "--batch-size", "8", "--embedding-dim",
                 "16", "--device", "cpu"]) == 0  # fmt: skip
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    encoder = config["encoder"]
    assert encoder["in_channels"] == 3 and encoder["image_size"] == 32
    pixels = np.stack([np.asarray(Image.open(p)) for p in sorted(data.iterdir())]) / 255.0
    assert encoder["mean"] == pytest.approx(pixels.mean(axis=(0, 1, 2)), abs=0.02)
    assert "importance softplus(s)" in capsys.readouterr().out


@pytest.mark.slow  # a pretrained backbone: tens of seconds
def test_plain_command_on_a_folder_trains_a_head_on_the_pretrained_backbone(tmp_path, capsys):
    data = colour_folder(tmp_path / "data")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "ckpt"), "--steps", "3",
                 "--device", "cpu"]) == 0  # fmt: skip
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    encoder = config["encoder"]
    assert encoder["backbone"] == "efficientnet-lite0"
    assert encoder["in_channels"] == 3 and encoder["image_size"] == PRETRAINED_INPUT.image_size
    assert encoder["mean"] == pytest.approx(PRETRAINED_INPUT.mean)  # the weights', not the folder's
    assert config["training"]["stage"] == "head" and config["training"]["steps"] == 3
    assert "efficientnet-lite0" in capsys.readouterr().err


def test_resumed_training_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    data = make_folder(tmp_path / "data")  # 24 images: 3 steps of 8 per epoch
    recipe = TrainConfig(data=str(data), loss="tricl-nested", epochs=3, batch_size=8,
                         device="cpu")  # fmt: skip
    small = EncoderConfig(widths=(8, 16), projector_hidden=32, embedding_dim=8)
    train(recipe, tmp_path / "straight", encoder_config=small)

    calls = []

    def augment_then_stop(*args):
        calls.append(1)
        if len(calls) > 8:  # two views a step: stop in the middle of epoch 2
            raise KeyboardInterrupt
        return augment(*args)

    monkeypatch.setattr(models.train, "augment", augment_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, tmp_path / "stopped", encoder_config=small)
    monkeypatch.setattr(models.train, "augment", augment)
    assert json.loads((tmp_path / "stopped" / CONFIG_FILE).read_text())["training"][
        "epochs_done"
    ] == 1  # fmt: skip

    with pytest.raises(ValueError, match="differs in: epochs"):
        train(replace(recipe, epochs=4), tmp_path / "stopped", encoder_config=small, resume=True)
    resumed = train(recipe, tmp_path / "stopped", encoder_config=small, resume=True)
    straight = load_file(tmp_path / "straight" / WEIGHTS_FILE)
    again = load_file(tmp_path / "stopped" / WEIGHTS_FILE)
    assert all(torch.equal(straight[name], again[name]) for name in straight)
    assert resumed["training"]["epochs_done"] == 3


def test_resume_without_a_previous_run_is_one_clear_error(tmp_path, capsys):
    data = make_folder(tmp_path / "data")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "new"), "--resume",
                 "--epochs", "1", "--batch-size", "8", "--device", "cpu"]) == 2  # fmt: skip
    assert "nothing to resume" in capsys.readouterr().err


def test_importance_learns_distinct_values_rather_than_moving_in_lockstep(tmp_path):
    data = colour_folder(tmp_path / "data", count=64)
    recipe = TrainConfig(data=str(data), loss="tricl-nested", epochs=4, batch_size=16,
                         device="cpu")  # fmt: skip
    small = EncoderConfig(widths=(8, 16), projector_hidden=32, embedding_dim=16)
    written = train(recipe, tmp_path / "ckpt", encoder_config=small)
    importance = sorted(written["importance"], reverse=True)
    assert len(set(importance)) == len(importance)
    assert importance[0] / importance[-1] > 1.05
