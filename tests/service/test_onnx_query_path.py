"""Queries embedded by ONNX Runtime: the same vectors and rankings as torch, no torch needed."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from models.checkpoint import load_checkpoint
from models.config import ONNX_FILE, EncoderConfig
from models.encoder import Encoder
from models.imagefiles import list_image_files, open_image
from models.inference import embed_pixels
from models.onnx_encoder import OnnxEncoder
from models.onnx_export import export_onnx
from models.preprocess import to_pixels
from models.vectors import unit_rows
from search.index_dir import load_index
from tests.helpers.commands import small_cnn_build
from tests.helpers.indexes import older_format_copy


def gallery_pixels(gallery, config):
    pixels = []
    for path in list_image_files(gallery):
        try:
            pixels.append(to_pixels(open_image(path), config))
        except Exception:  # the deliberately broken files
            continue
    return np.stack(pixels)


def test_onnx_equals_torch_on_every_image_mode(index_dir, gallery):
    index = load_index(index_dir)
    encoder, _ = load_checkpoint(index.model_dir)
    onnx = OnnxEncoder(index.model_dir / ONNX_FILE, encoder.config)
    pixels = gallery_pixels(gallery, encoder.config)  # L, RGB, CMYK, RGBA, LA, P, I;16, GIF...
    np.testing.assert_allclose(onnx.embed(pixels), embed_pixels(encoder, pixels), atol=1e-4)
    np.testing.assert_allclose(
        onnx.embed(pixels[:1], keep=5), embed_pixels(encoder, pixels[:1], keep=5), atol=1e-4
    )


def test_an_exported_colour_encoder_equals_torch(tmp_path, gallery):
    config = EncoderConfig(
        in_channels=3, image_size=20, pool_grid=2, mean=(0.4,) * 3, std=(0.3,) * 3
    )
    encoder = Encoder(config, seed=3).eval()
    export_onnx(encoder, tmp_path / ONNX_FILE)
    pixels = gallery_pixels(gallery, config)
    onnx = OnnxEncoder(tmp_path / ONNX_FILE, config)
    np.testing.assert_allclose(onnx.embed(pixels), embed_pixels(encoder, pixels), atol=1e-4)


def test_rankings_at_every_budget_equal_torch_rankings(index_dir, gallery):
    index = load_index(index_dir)
    encoder, _ = load_checkpoint(index.model_dir)
    onnx = OnnxEncoder(index.model_dir / ONNX_FILE, encoder.config)
    pixels = gallery_pixels(gallery, encoder.config)
    by_onnx, by_torch = (
        onnx.embed(pixels, keep=index.keep),
        embed_pixels(encoder, pixels, keep=index.keep),
    )
    for k in range(2, index.keep + 1):  # at k = 1 every cosine is +-1: all ties
        gallery_k = unit_rows(index.vectors[:, :k])
        onnx_scores = unit_rows(by_onnx[:, :k]) @ gallery_k.T
        torch_scores = unit_rows(by_torch[:, :k]) @ gallery_k.T
        for a, b in zip(onnx_scores, torch_scores, strict=True):
            order = np.argsort(-b, kind="stable")
            clear = np.abs(np.diff(b[order])) > 1e-4  # neighbours not tied within the tolerance
            assert np.array_equal(np.argsort(-a, kind="stable")[:-1][clear], order[:-1][clear])


SEARCH_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
from pathlib import Path
from fastapi.testclient import TestClient
from service.app import create_app
from service.settings import Settings
from service.state import load_state
settings = Settings(index=Path(sys.argv[1]))
try:
    state = load_state(settings)
except ValueError as error:
    print("error:", error)
    sys.exit(2)
with TestClient(create_app(settings, state)) as client:
    answer = client.post("/search", files={"file": open(sys.argv[2], "rb")}, params={"top_k": 3})
print(answer.status_code, answer.json()["results"][0]["id"])
"""


def run_without_torch(index, query):
    return subprocess.run(
        [sys.executable, "-c", SEARCH_WITHOUT_TORCH, str(index), str(query)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_service_searches_without_torch(index_dir, gallery):
    result = run_without_torch(index_dir, gallery / "plain/item-04.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "plain/item-04.png"]


def test_an_index_of_an_older_format_names_the_command_that_rebuilds_it(
    index_dir, gallery, tmp_path
):
    old = older_format_copy(index_dir, tmp_path / "old")
    result = run_without_torch(old, gallery / "plain/item-04.png")
    assert result.returncode == 2
    assert result.stdout.strip() == (
        "error: index format 1 is no longer read: rebuild it with "
        f"python -m indexer build --gallery GALLERY --out {old}"
    )


def test_an_index_without_its_onnx_file_is_refused(index_dir, tmp_path):
    from service.settings import Settings
    from service.state import load_state

    copy = shutil.copytree(index_dir, tmp_path / "copy")
    (copy / "model" / ONNX_FILE).unlink()
    with pytest.raises(ValueError, match=r"index file model/model\.onnx is missing"):
        load_state(Settings(index=copy))


def test_a_tampered_onnx_file_is_refused(index_dir, tmp_path):
    from service.settings import Settings
    from service.state import load_state

    copy = shutil.copytree(index_dir, tmp_path / "copy")
    with open(copy / "model" / ONNX_FILE, "ab") as stream:
        stream.write(b"\0")
    with pytest.raises(ValueError, match="does not match its checksum"):
        load_state(Settings(index=copy))


@pytest.mark.slow
def test_the_named_rebuild_command_makes_an_older_index_servable(index_dir, gallery, tmp_path):
    from indexer.__main__ import main
    from service.settings import Settings
    from service.state import load_state

    old = older_format_copy(index_dir, tmp_path / "old")
    assert main(small_cnn_build(gallery, old, "--workers", "0")) == 0
    state = load_state(Settings(index=old))
    assert type(state.embedder.encoder).__name__ == "OnnxEncoder"
