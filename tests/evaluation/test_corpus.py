import json

import numpy as np
from PIL import Image

from evaluation.corpus import write_corpus
from tests.helpers.images import garment, write_idx


def _set(root, gallery, **extra):
    for path in gallery:
        (root / "gallery" / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (len(path), 0, 0)).save(root / "gallery" / path)
    (root / "items.json").write_text(json.dumps({"gallery": gallery, **extra}))
    return root


def test_corpus_leaves_out_what_the_evaluations_query(tmp_path, monkeypatch):
    photos = _set(tmp_path / "photos", {"a/x.jpg": ["a__x"], "a/y.jpg": ["a__y"]},
                  queries={"a__x.jpg": ["a__x"]})  # fmt: skip
    icons = _set(tmp_path / "icons", {"Adwaita/cup.png": ["cup"], "breeze/cup.png": ["cup"]},
                 validation_style="breeze")  # fmt: skip
    logos = _set(tmp_path / "logos", {"logos/git.png": ["git"], "devicon2/git.png": ["git"]},
                 validation_style="logos")  # fmt: skip
    fashion = tmp_path / "fashion"
    fashion.mkdir()
    write_idx(fashion / "train-images-idx3-ubyte.gz", np.stack([garment(i) for i in range(5)]))
    write_idx(fashion / "train-labels-idx1-ubyte.gz", np.array([0, 9, 0, 3, 1], np.uint8))
    monkeypatch.setenv("FASHION_MNIST_DIR", str(fashion))

    summary = write_corpus(tmp_path / "corpus", photos=photos, icon_themes=icons,
                           dev_logos=logos, garments=3)  # fmt: skip
    assert summary["counts"] == {"photos": 1, "icon-themes": 1, "dev-logos": 1,
                                 "fashion-mnist": 3}  # fmt: skip
    corpus = tmp_path / "corpus"
    files = {p.relative_to(corpus).as_posix() for p in corpus.rglob("*.*")} - {"corpus.json"}
    assert files == {
        "photos/a/y.jpg",  # a/x.jpg is the original of a test query
        "icon-themes/Adwaita/cup.png",  # breeze is the validation style
        "dev-logos/devicon2/git.png",
        "fashion-mnist/t-shirt/train-00000.png",
        "fashion-mnist/ankle-boot/train-00001.png",
        "fashion-mnist/t-shirt/train-00002.png",
    }
    assert json.loads((corpus / "corpus.json").read_text())["images"] == 6
