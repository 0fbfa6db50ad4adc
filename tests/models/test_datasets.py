import gzip
import struct

import numpy as np
import pytest

from models.datasets import load_fashion_mnist, read_idx
from tests.helpers.images import write_idx


def test_read_idx_round_trips_images_and_labels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 3, 9, 1, 1], dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    loaded_images, loaded_labels = load_fashion_mnist("test", root=tmp_path)
    assert np.array_equal(loaded_images, images)
    assert loaded_labels.tolist() == [0, 3, 9, 1, 1]


def test_read_idx_rejects_a_file_whose_size_disagrees_with_its_header(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="header says 10 bytes"):
        read_idx(path)


def test_missing_dataset_names_the_package_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path)
