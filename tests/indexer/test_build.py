import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.__main__ import main
from indexer.build import BuildConfig, build_index
from indexer.demo import write_demo_gallery
from models.checkpoint import SMALL_CNN_CHECKPOINT, load_checkpoint
from search.index_dir import load_index, load_index_model
from search.manifest import SkippedFile, codes_file, read_manifest
from tests.helpers.commands import small_cnn_build
from tests.helpers.images import BROKEN, garment, write_gallery, write_idx


def test_build_indexes_every_readable_format_and_records_the_broken(gallery, index_dir):
    index = load_index(index_dir)
    manifest = index.manifest
    expected = sorted(set(write_gallery(gallery.parent / "again")) - BROKEN)
    assert index.ids == expected  # sorted gallery-relative POSIX paths, every odd mode included
    assert manifest.count == len(expected) == index.vectors.shape[0]
    assert index.vectors.shape[1] == manifest.keep == 32
    assert {item.path for item in manifest.skipped} == BROKEN
    assert all(item.reason and "/" not in item.reason for item in manifest.skipped)
    _, model_config = load_checkpoint(SMALL_CNN_CHECKPOINT)
    order = model_config["importance_order"]
    assert list(manifest.importance) == [model_config["importance"][j] for j in order[:32]]
    assert list(manifest.importance) == sorted(manifest.importance, reverse=True)
    assert manifest.model.id == model_config["id"]
    assert len(index.hashes) == len(index.ids)


def test_vectors_are_the_encoder_embeddings_truncated_to_keep(gallery, index_dir):
    from models.imagefiles import open_image
    from models.inference import embed_pixels
    from models.preprocess import to_pixels

    encoder, _ = load_checkpoint(SMALL_CNN_CHECKPOINT)
    index = load_index(index_dir)
    row = index.ids.index("odd/cmyk.jpg")
    pixels = to_pixels(open_image(gallery / "odd/cmyk.jpg"), encoder.config)
    expected = embed_pixels(encoder, pixels[None], keep=32)[0]
    np.testing.assert_allclose(index.vectors[row], expected, atol=1e-4)  # ONNX Runtime


def test_cli_build_prints_a_summary_and_replaces_an_existing_index(gallery, tmp_path, capsys):
    out = tmp_path / "index"
    args = small_cnn_build(gallery, out, "--keep", "16", "--workers", "0")
    assert main(args) == 0
    first = read_manifest(out)
    assert "indexed 23 images, skipped 2" in capsys.readouterr().out
    assert main([*args[:-4], "--keep", "8", "--workers", "1"]) == 0
    second = load_index(out)
    assert second.keep == 8 and second.manifest.created >= first.created
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".index.")]  # no leftovers


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--keep", "129"], "--keep 129 is larger than the model's 128 dimensions"),
        (["--keep", "0"], "--keep must be at least 1"),
        (["--model", "/nonexistent/model"], "is not a model checkpoint"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(gallery, tmp_path, capsys, arguments, message):
    code = main(small_cnn_build(gallery, tmp_path / "i", *arguments))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "i").exists()


def test_empty_or_missing_gallery_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    assert main(small_cnn_build(tmp_path / "empty", tmp_path / "i")) == 2
    assert "no image files found" in capsys.readouterr().err
    assert main(small_cnn_build(tmp_path / "nope", tmp_path / "i")) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_gallery_of_only_broken_files_fails_and_keeps_the_old_index(
    gallery, index_dir, tmp_path, capsys
):
    out = tmp_path / "index"
    shutil.copytree(index_dir, out)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in BROKEN:
        shutil.copy(gallery / name, broken / Path(name).name)
    assert main(small_cnn_build(broken, out, "--workers", "0")) == 2
    assert "none of the 2 image files" in capsys.readouterr().err
    assert load_index(out).ids == load_index(index_dir).ids


def test_refuses_to_overwrite_a_folder_that_is_not_an_index(gallery, tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    assert main(small_cnn_build(gallery, precious)) == 2
    assert "is not an index directory" in capsys.readouterr().err
    assert (precious / "thesis.txt").read_text() == "do not delete"


def test_corrupt_index_fails_to_load_with_a_clear_message(index_dir, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    with (copy / "vectors.npy").open("r+b") as stream:
        stream.seek(-4, 2)
        stream.write(b"\x00\x00\x80\x7f")
    with pytest.raises(ValueError, match=r"vectors\.npy does not match its checksum"):
        load_index(copy)


def test_reading_only_the_model_verifies_the_model_and_nothing_else(index_dir, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    with (copy / "vectors.npy").open("r+b") as stream:
        stream.seek(-4, 2)
        stream.write(b"\x00\x00\x80\x7f")
    model = load_index_model(copy)  # the vectors are the shards' to verify, not the ingress's
    assert model.model_dir == copy / "model" and model.keep == load_index(index_dir).keep
    with (copy / "model" / "model.onnx").open("ab") as stream:
        stream.write(b"\x00")
    with pytest.raises(ValueError, match=r"model/model\.onnx does not match its checksum"):
        load_index_model(copy)


def test_demo_gallery_writes_class_folders(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 0, 9, 5], dtype=np.uint8))
    assert write_demo_gallery(tmp_path / "imgs", count=4, root=tmp_path) == 4
    written = sorted(
        p.relative_to(tmp_path / "imgs").as_posix() for p in (tmp_path / "imgs").rglob("*")
    )
    assert [p for p in written if p.endswith(".png")] == [
        "pullover/test-00002.png",
        "t-shirt/test-00000.png",
        "t-shirt/test-00003.png",
        "trouser/test-00001.png",
    ]


def test_a_file_name_with_a_line_break_is_skipped_not_corrupting_ids(tmp_path):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    Image.fromarray(garment(1)).save(gallery / "fine.png")
    Image.fromarray(garment(2)).save(gallery / "two\nlines.png")
    build_index(
        BuildConfig(gallery=gallery, model=SMALL_CNN_CHECKPOINT, out=tmp_path / "i", workers=0)
    )
    index = load_index(tmp_path / "i")
    assert index.ids == ["fine.png"]
    assert index.manifest.skipped == (
        SkippedFile("two\\nlines.png", "file name contains a line break"),
    )


def test_cli_builds_the_four_bit_codes_when_asked_and_update_keeps_them(tmp_path, capsys):
    gallery = tmp_path / "garments"
    gallery.mkdir()
    for seed in range(300):
        Image.fromarray(garment(seed)).save(gallery / f"{seed:03d}.png")
    out = tmp_path / "index"
    args = small_cnn_build(gallery, out, "--workers", "0", "--keep", "32")
    assert main([*args, "--four-bit", "always"]) == 0
    assert "4-bit codes at 16, 32 features" in capsys.readouterr().out
    index = load_index(out)
    assert [budget.features for budget in index.manifest.four_bit] == [16, 32]
    assert index.codes[16].ntotal == 300 and index.codes[32].d == 32
    assert index.manifest.build.four_bit == "always"
    assert index.manifest.build.index_seconds is not None
    (gallery / "000.png").unlink()
    update = ["update", "--gallery", str(gallery), "--out", str(out), "--workers", "0"]
    assert main(update) == 0
    updated = load_index(out)
    assert sorted(updated.codes) == [16, 32] and updated.codes[16].ntotal == 299


def test_auto_on_a_small_gallery_writes_no_codes(gallery, tmp_path):
    out = tmp_path / "index"
    assert main(small_cnn_build(gallery, out, "--workers", "0")) == 0
    assert load_index(out).manifest.four_bit == () and not list(out.glob(codes_file(16)))


def test_each_file_is_hashed_and_decoded_from_one_read(gallery, tmp_path):
    import hashlib

    from indexer.gallery import read_files
    from models.config import EncoderConfig

    good = gallery / "odd/cmyk.jpg"
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    paths = [str(good), str(tmp_path / "vanished.png"), str(good)]
    read = read_files(paths, EncoderConfig(), unchanged=["", "", digest])
    assert list(read["sha256"]) == [digest, "", digest]
    assert read["failure"][0] == "" and read["failure"][2] == ""
    assert read["failure"][1].startswith("could not read: No such file")
    assert list(read["decoded"]) == [True, False, False]  # unchanged bytes are not decoded
    assert read["pixels"][0].any() and not read["pixels"][2].any()


def test_symlink_loops_and_names_that_are_not_utf8_are_skipped_with_reasons(tmp_path):
    import os

    gallery = tmp_path / "gallery"
    gallery.mkdir()
    Image.fromarray(garment(1)).save(gallery / "ok.png")
    (gallery / "loop-a.png").symlink_to(gallery / "loop-b.png")
    (gallery / "loop-b.png").symlink_to(gallery / "loop-a.png")
    (gallery / "itself").symlink_to(gallery)  # a folder that contains itself: not followed
    with open(os.path.join(os.fsencode(gallery), b"caf\xe9.png"), "wb") as stream:
        stream.write((gallery / "ok.png").read_bytes())
    out = tmp_path / "index"
    build_index(
        BuildConfig(gallery=gallery, model=SMALL_CNN_CHECKPOINT, out=out, keep=8, workers=0)
    )
    index = load_index(out)
    assert index.ids == ["ok.png"]
    reasons = {item.path: item.reason for item in index.manifest.skipped}
    assert reasons["caf\ufffd.png"] == "file name is not valid UTF-8"
    assert reasons["loop-a.png"].startswith("could not read: Too many levels of symbolic links")
