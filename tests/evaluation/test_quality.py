"""The gallery-set evaluation end to end at tiny size: assemble, train, measure."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from evaluation.galleries import Drawing, write_gallery
from evaluation.quality import load_gallery_set, main, perturb
from models.__main__ import main as models_main

SHAPES = ("circle", "square", "triangle", "bar")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 80, 230)}
STYLES = {"filled": (8, 0), "outlined": (8, 6), "small": (18, 0), "query": (12, 0)}


def shape_drawing(path, shape, colour, margin, outline):
    image = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    box = (margin, margin, 47 - margin, 47 - margin)
    fill = None if outline else colour
    width = outline or 1
    if shape == "circle":
        draw.ellipse(box, fill=fill, outline=colour, width=width)
    elif shape == "square":
        draw.rectangle(box, fill=fill, outline=colour, width=width)
    elif shape == "triangle":
        draw.polygon([(24, margin), (47 - margin, 47 - margin), (margin, 47 - margin)],
                     fill=fill, outline=colour, width=width)  # fmt: skip
    else:
        draw.rectangle((margin, 20, 47 - margin, 28), fill=fill, outline=colour, width=width)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def gallery_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("set")
    sources = root / "sources"
    sources.mkdir()
    styles = {}
    for style, (margin, outline) in STYLES.items():
        styles[style] = [
            Drawing(
                (f"{colour}-{shape}",),
                raster=shape_drawing(
                    sources / f"{style}-{colour}-{shape}.png", shape, rgb, margin, outline
                ),
            )
            for shape in SHAPES
            for colour, rgb in COLOURS.items()
        ]
    write_gallery(root / "out", styles, query_style="query", validation_style="small",
                  min_styles=2, max_gallery=1000)  # fmt: skip
    return root / "out"


def test_gallery_set_layout_and_splits(gallery_set):
    items = json.loads((gallery_set / "items.json").read_text())
    assert items["query_style"] == "query" and len(items["queries"]) == 12
    assert len(items["gallery"]) == 36
    assert all((gallery_set / "gallery" / path).is_file() for path in items["gallery"])
    assert Image.open(gallery_set / "queries" / "red-circle.png").size == (64, 64)

    val = load_gallery_set(gallery_set, "val")
    assert len(val.queries) == 12 and len(val.gallery) == 24
    assert not any("small/" in path.as_posix() for path in val.gallery)
    test = load_gallery_set(gallery_set, "test")
    assert [len(r) for r in test.relevant()] == [3] * 12


def test_perturb_keeps_the_canvas_and_changes_the_pixels(gallery_set):
    image = Image.open(gallery_set / "queries" / "red-circle.png")
    bad = perturb(image, np.random.default_rng(0))
    assert bad.size == image.size and bad.mode == "RGBA"
    assert not np.array_equal(np.asarray(bad), np.asarray(image.convert("RGBA")))


@pytest.mark.slow
def test_quality_command_measures_pixels_and_a_trained_model(gallery_set, tmp_path, capsys):
    model = tmp_path / "a" / "model"
    assert models_main(["train", "--data", str(gallery_set / "gallery"), "--out", str(model),
                        "--steps", "20", "--views", "2", "--image-size", "64", "--batch-size",
                        "12", "--embedding-dim", "16", "--device", "cpu"]) == 0  # fmt: skip
    shutil.copytree(model, tmp_path / "b" / "model")  # a second folder of the same name
    out = tmp_path / "quality.json"
    assert main(["--set", str(gallery_set), "--model", str(model),
                 "--model", str(tmp_path / "b" / "model"), "--budgets", "4", "8",
                 "--json", str(out)]) == 0  # fmt: skip
    results = json.loads(out.read_text())
    pixels = results["methods"]["raw pixels + PCA to k"]
    trained = results["methods"]["a/model (tricl-nested)"]
    assert results["methods"]["b/model (tricl-nested)"]["clean"] == trained["clean"]
    assert set(trained["clean"]) == {"4", "8"} == set(trained["perturbed"])
    # Colour and layout are shared across these styles: pixels find far more than chance (3/36).
    assert pixels["clean"]["8"] > 0.5
    assert all(0.0 <= value <= 1.0 for value in trained["clean"].values())
    assert trained["importance"]["random_k_recall"].keys() == {"4", "8"}
    assert "same-item recall@10" in capsys.readouterr().out
    assert Image.open(out.with_suffix(".png")).size[0] > 100


def test_quality_command_names_a_folder_that_is_not_a_gallery_set(tmp_path, capsys):
    assert main(["--set", str(tmp_path)]) == 2
    assert "not a gallery set" in capsys.readouterr().err
