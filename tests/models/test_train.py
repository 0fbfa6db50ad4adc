import json

import torch
from PIL import Image
from safetensors.torch import load_file

from models.__main__ import main
from models.checkpoint import CONFIG_FILE, DEFAULT_CHECKPOINT, WEIGHTS_FILE, load_checkpoint
from tests.conftest import garment


def make_folder(root, count=24):
    for i in range(count):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(garment(i, 40)).convert("RGB").save(folder / f"{i}.jpg")
    (root / "corrupt.png").write_bytes(b"not a png")
    return root


def train_cli(data, out, seed=0):
    return main(
        ["train", "--data", str(data), "--loss", "tricl", "--epochs", "1", "--batch-size", "8",
         "--embedding-dim", "16", "--seed", str(seed), "--out", str(out), "--device", "cpu"]
    )  # fmt: skip


def test_training_on_a_folder_writes_a_self_describing_checkpoint(tmp_path):
    data = make_folder(tmp_path / "data")
    assert train_cli(data, tmp_path / "ckpt") == 0
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert config["encoder"]["embedding_dim"] == 16
    assert config["training"]["loss"] == "tricl"
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
    encoder, config = load_checkpoint(DEFAULT_CHECKPOINT)
    assert config["training"]["loss"] == "tricl-nested"
    assert config["training"]["data"] == "fashion-mnist"
    assert encoder.config.embedding_dim == len(config["importance"])
    assert encoder.embed(torch.zeros(2, 1, 28, 28)).shape == (2, encoder.config.embedding_dim)
